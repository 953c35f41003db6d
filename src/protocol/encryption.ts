/**
 * Node-to-node encryption, set per gateway in the service: `none` (plain HTTP between nodes) or `tls`
 * (every node-to-node connection is TLS with both sides authenticated by certificate). Requests are
 * signed with each node's Ed25519 key in both modes (protocol/peer.ts): the signature says who is a
 * member, TLS keeps the channel private.
 *
 * A node's transport, as it reports it in each heartbeat (TlsReport), is two switches: does it send
 * TLS, and does its port still accept plain HTTP (it always accepts TLS once it holds a
 * certificate). A live change of mode moves every node through the state where both are accepted:
 *
 *   plain (sends plain, accepts both) -> both (sends TLS, accepts both) -> tls (sends TLS, accepts TLS only)
 *
 * none -> tls: a node that hears `tls` starts sending TLS at once (every port still takes plain and
 * TLS); once the service sees every live node sending TLS it says `settled`, and each node stops
 * taking plain. tls -> none: a node that hears `none` takes plain again at once but keeps sending TLS
 * until the service says every live node takes plain; then it sends plain. So no node ever sends
 * what a peer refuses, and no running copy loses a dispatch. Each step is latched per mode on the
 * node: a node that joins later does not make the others go back.
 */
import { Type, type Static } from 'typebox';

export const ENCRYPTION_MODES = ['none', 'tls'] as const;
export type EncryptionMode = (typeof ENCRYPTION_MODES)[number];

export const EncryptionModeSchema = Type.Union([Type.Literal('none'), Type.Literal('tls')]);

export function isEncryptionMode(v: unknown): v is EncryptionMode {
  return v === 'none' || v === 'tls';
}

/** An ECDSA P-256 public key, base64 SPKI DER (91 bytes: 124 characters). */
export const TlsPublicKeyText = Type.String({
  minLength: 16,
  maxLength: 512,
  pattern: '^[A-Za-z0-9+/]+={0,2}$',
});

/** The certificate a node serves and presents on its peer port. */
export const TlsCertificateFacts = Type.Object(
  {
    /** `gateway`: issued by the gateway's own CA; `user`: the node's --tls-cert. */
    source: Type.Union([Type.Literal('gateway'), Type.Literal('user')]),
    /** sha256 fingerprint, as node:crypto's X509Certificate prints it. */
    fingerprint: Type.String({ maxLength: 200 }),
    /** Its notAfter, ms since the epoch. */
    expiresAt: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

/** A node's node-to-node transport, in each heartbeat. */
export const TlsReport = Type.Object(
  {
    /** The gateway mode the node last heard and is working towards. */
    mode: EncryptionModeSchema,
    sendsTls: Type.Boolean(),
    acceptsPlain: Type.Boolean(),
    certificate: Type.Optional(TlsCertificateFacts),
    /** A node without a user certificate: the key the gateway CA is to certify (its private half stays on the node). */
    publicKey: Type.Optional(TlsPublicKeyText),
    /** Why the node cannot serve TLS (e.g. its --tls-cert file is missing). */
    problem: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);

/** The service's word on encryption, in each heartbeat reply. */
export const EncryptionOrder = Type.Object({
  mode: EncryptionModeSchema,
  /**
   * Every live node has made the first step towards `mode` (sends TLS, or takes plain again): the
   * node may make the second (refuse plain, or send plain).
   */
  settled: Type.Boolean(),
  /** A certificate the gateway CA issued this node (PEM), sent when the node does not hold it yet. */
  certificate: Type.Optional(Type.String({ maxLength: 16_384 })),
  /** The gateway CA's certificate (PEM), sent with `certificate`: peers' certificates verify under it. */
  ca: Type.Optional(Type.String({ maxLength: 16_384 })),
});

export type TlsReportT = Static<typeof TlsReport>;
export type EncryptionOrderT = Static<typeof EncryptionOrder>;
export type TlsCertificateFactsT = Static<typeof TlsCertificateFacts>;

/** What an older node (no TlsReport) means by its `tls` flag alone. */
export function reportFromFlag(tls: boolean): Pick<TlsReportT, 'sendsTls' | 'acceptsPlain'> {
  return { sendsTls: tls, acceptsPlain: !tls };
}
