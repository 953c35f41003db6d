/** Small shared pieces: links that stay in the app, status badges, error and empty states. */
import type { MouseEvent, ReactNode } from 'react';
import { ApiError } from '../api.ts';
import { navigate } from '../routes.ts';

export function Link({ to, children, className }: { to: string; children: ReactNode; className?: string }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>): void => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={onClick} className={className}>
      {children}
    </a>
  );
}

const TONE: Record<string, string> = {
  Online: 'ok',
  succeeded: 'ok',
  Offline: 'bad',
  failed: 'bad',
  lost: 'bad',
  Limited: 'warn',
  Inactive: 'warn',
  Upgrading: 'warn',
  'Needs Registration': 'warn',
  running: 'busy',
  queued: 'idle',
  pending: 'idle',
};

export function Badge({ status }: { status: string }) {
  return <span className={`badge ${TONE[status] ?? 'idle'}`}>{status}</span>;
}

/** A status with its reason and, when it is not plain Online, its hint. */
export function StatusCell({ status, reason, hint }: { status: string; reason: string; hint: string }) {
  return (
    <div className="status-cell">
      <Badge status={status} />
      {reason !== 'ok' && <span className="reason">{reason}</span>}
      {hint && status !== 'Online' && <div className="hint">{hint}</div>}
    </div>
  );
}

/** A failure as the service said it: its message and hint, and what the portal adds. */
export function ErrorBox({
  error,
  title,
  onRetry,
}: {
  error: unknown;
  title?: string;
  onRetry?: () => void;
}) {
  const e = error instanceof ApiError ? error : undefined;
  const message = e ? e.message : error instanceof Error ? error.message : String(error);
  let hint = e?.hint;
  if (!hint && e?.status === 401)
    hint = 'sign in again with a valid API token (`ferry token create`, or the admin token)';
  if (!hint && e?.status === 403) hint = 'your token’s role does not allow this; ask an admin';
  return (
    <div className="error" role="alert">
      <strong>{title ?? 'Error'}:</strong> <span className="error-message">{message}</span>
      {e && e.code && <span className="code"> ({e.code})</span>}
      {hint && <div className="error-hint">{hint}</div>}
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** "updated 2 s ago" under a live table, and the error of the refresh that failed, if one did. */
export function Freshness({ at, error }: { at: number | undefined; error: unknown }) {
  return (
    <div className="freshness" aria-live="polite">
      {error !== undefined && <ErrorBox error={error} title="Refresh failed (the figures shown are older)" />}
      {at !== undefined && <span>Live, every 2 s · last read {new Date(at).toLocaleTimeString()}</span>}
    </div>
  );
}
