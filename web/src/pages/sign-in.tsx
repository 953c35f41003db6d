/** Sign in with an API token: checked against the service before it is kept (sessionStorage only). */
import { useState, type FormEvent } from 'react';
import { api, setToken } from '../api.ts';
import { ErrorBox } from '../components/ui.tsx';

export function SignIn() {
  const [value, setValue] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const token = value.trim();
    if (!token) {
      setError(new Error('enter an API token'));
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await api('GET', '/gateways', undefined, token);
      setToken(token);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="sign-in" onSubmit={(e) => void submit(e)}>
      <h1>Sign in to Ferry</h1>
      <p>
        Use an API token: the admin token (<code>ferry up</code> prints it and keeps it in{' '}
        <code>ferry-data/admin-token</code>) or one made with{' '}
        <code>ferry token create NAME --role reader</code>. The token is kept in this browser tab only and is
        forgotten when the tab closes.
      </p>
      <label htmlFor="token">API token</label>
      <input
        id="token"
        name="token"
        type="password"
        autoComplete="off"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        autoFocus
      />
      <button type="submit" disabled={busy}>
        {busy ? 'Signing in…' : 'Sign in'}
      </button>
      {error !== undefined && <ErrorBox error={error} title="Cannot sign in" />}
    </form>
  );
}
