/**
 * What the node-to-node port answers (peer-server.ts checks who is calling first): a ping, with
 * this node's load, and a dispatch, handed to this node's worker with whether the service vouches
 * for its sender as the dispatcher of its epoch.
 */
import type { KeyObject } from 'node:crypto';
import type { PeerRoute } from './peer-server.ts';
import type { Worker } from './worker.ts';
import { DispatchRequest, type PingResponseT } from '../protocol/peer.ts';
import { leaseVouches } from '../protocol/dispatcher-lease.ts';
import { parsePublicKey } from '../protocol/node-keys.ts';
import { validator } from '../protocol/validate.ts';

const dispatchValidator = validator(DispatchRequest);

/**
 * The largest dispatch body taken. A task spec is small (a few KiB with the default 64 files per
 * task), but a file source may put up to 100,000 files in one task, about 100 bytes each with a
 * typical path: this leaves room for that. Only a current member's signed dispatch is ever read.
 */
export const MAX_DISPATCH_BODY = 16 * 1024 * 1024;

/** The service's key for dispatcher lease tokens, as the latest heartbeat gave it. */
export class LeaseKey {
  #text: string | undefined;
  #key: KeyObject | undefined;

  /** None until the first heartbeat: until then no dispatch is vouched for. */
  get key(): KeyObject | undefined {
    return this.#key;
  }

  /** From each heartbeat; parsed only when it changes. */
  update(text: string): void {
    if (text === this.#text) return;
    this.#key = parsePublicKey(text, 'ed25519', 'servicePublicKey');
    this.#text = text;
  }
}

export function peerRoutes(node: {
  worker: Worker;
  /** This node's name. */
  name: string;
  leaseKey: LeaseKey;
}): Record<string, PeerRoute> {
  const { worker, name, leaseKey } = node;
  return {
    'GET /v1/ping': {
      maxBody: 0,
      handle: async (_body, caller): Promise<PingResponseT> => ({
        nodeId: caller.toNodeId,
        name,
        gatewayId: caller.gatewayId,
        running: worker.runningCount,
        limit: worker.limit,
        draining: worker.draining,
      }),
    },
    'POST /v1/dispatch': {
      maxBody: MAX_DISPATCH_BODY,
      handle: async (body, caller) => {
        const req = dispatchValidator.parse(body, 'dispatch');
        const vouched = leaseVouches(req.lease, leaseKey.key, {
          gatewayId: caller.gatewayId,
          senderNodeId: caller.nodeId,
          epoch: req.epoch,
        });
        return worker.accept(req, vouched);
      },
    },
  };
}
