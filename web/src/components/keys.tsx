/**
 * A gateway's authentication keys: "add a node" shows a key and the exact command to run on the new
 * machine (and says when the node has joined); the keys panel regenerates either key, after a
 * confirmation, since a node that has not registered yet with the old key can no longer join.
 * Reading keys is for admins only: another role sees the service's refusal.
 */
import { useEffect, useState } from 'react';
import { api, enc } from '../api.ts';
import type { Keys } from '../types.ts';
import { Confirm, Dialog } from './confirm.tsx';
import { ErrorBox, Loading } from './ui.tsx';

/** The command that starts a node of `gateway` on another machine: the service as this page reaches it. */
export function nodeCommand(key: string, name: string): string {
  const parts = ['ferry', 'node', '--service', location.origin, '--key', key];
  if (name) parts.push('--name', name);
  return parts.join(' ');
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function AddNode({
  gateway,
  open,
  onClose,
  joined,
}: {
  gateway: string;
  open: boolean;
  onClose: () => void;
  joined: string[];
}) {
  const [keys, setKeys] = useState<Keys | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [name, setName] = useState('');
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!open) return;
    setKeys(undefined);
    setError(undefined);
    setCopied(false);
    api<Keys>('GET', `/gateways/${enc(gateway)}/keys`).then(setKeys, setError);
  }, [open, gateway]);
  const badName = name !== '' && !NAME.test(name);
  const command = keys ? nodeCommand(keys.key1, badName ? '' : name) : '';
  return (
    <Dialog title={`Add a node to ${gateway}`} open={open} onClose={onClose}>
      {error !== undefined ? (
        <ErrorBox error={error} title="Cannot read the gateway's keys" />
      ) : !keys ? (
        <Loading what="the keys" />
      ) : (
        <div id="add-node">
          <label htmlFor="new-node-name">
            Name of the new node (optional; default: the machine&apos;s host name)
          </label>
          <input id="new-node-name" value={name} onChange={(e) => setName(e.target.value)} autoFocus />
          {badName && <p className="error">A name is 1-63 letters, digits, dots, dashes or underscores.</p>}
          <p>
            Authentication key (key1): <code id="new-node-key">{keys.key1}</code>
          </p>
          <p>On the new machine, with Ferry installed, run:</p>
          <pre id="new-node-command">{command}</pre>
          <p className="sub">
            Add <code>--data-dir DIR</code> for its state, <code>--allow-path P</code> for each folder it may
            read or write, and <code>--advertise HOST</code> when other nodes reach it by another name. To
            keep the key out of the process list, pass it as <code>FERRY_NODE_KEY=KEY</code> or with{' '}
            <code>--key-file FILE</code> instead.
          </p>
          {name && !badName && joined.includes(name) && (
            <p className="ok-note" role="status">
              {name} has joined the gateway.
            </p>
          )}
          <div className="dialog-buttons">
            <button
              type="button"
              onClick={() =>
                void navigator.clipboard?.writeText(command).then(
                  () => setCopied(true),
                  () => setCopied(false),
                )
              }
            >
              {copied ? 'Copied' : 'Copy the command'}
            </button>
            <button type="button" onClick={onClose}>
              Done
            </button>
          </div>
        </div>
      )}
    </Dialog>
  );
}

export function KeysPanel({ gateway }: { gateway: string }) {
  const [which, setWhich] = useState<'key1' | 'key2' | undefined>(undefined);
  const [keys, setKeys] = useState<Keys | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const regenerate = async (w: 'key1' | 'key2'): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      setKeys(await api<Keys>('POST', `/gateways/${enc(gateway)}/keys/${w}/regenerate`));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      setWhich(undefined);
    }
  };
  return (
    <section className="panel" aria-labelledby="keys-title">
      <h2 id="keys-title">Authentication keys</h2>
      <p>
        Nodes join with either key. Regenerate one to shut out whoever may have seen it; nodes already
        registered stay.
      </p>
      <div className="buttons">
        <button type="button" className="danger" onClick={() => setWhich('key1')} disabled={busy}>
          Regenerate key1
        </button>
        <button type="button" className="danger" onClick={() => setWhich('key2')} disabled={busy}>
          Regenerate key2
        </button>
      </div>
      {error !== undefined && <ErrorBox error={error} title="Cannot regenerate the key" />}
      {keys && (
        <p role="status" id="new-keys">
          New keys: key1 <code>{keys.key1}</code>, key2 <code>{keys.key2}</code>
        </p>
      )}
      <Confirm
        open={which !== undefined}
        title={`Regenerate ${which ?? ''} of ${gateway}?`}
        body={<p>The old {which} stops working at once: a node not yet registered with it cannot join.</p>}
        action={`Regenerate ${which ?? ''}`}
        busy={busy}
        onClose={() => setWhich(undefined)}
        onConfirm={() => which && void regenerate(which)}
      />
    </section>
  );
}
