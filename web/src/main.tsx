/**
 * The Ferry portal: a single-page app over the service's public API. Signed out, it shows the sign-in
 * form; signed in, the page its URL names (routes.ts), under a header with the main sections.
 */
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { getToken, setToken } from './api.ts';
import { paths, useRoute } from './routes.ts';
import { Link } from './components/ui.tsx';
import { SignIn } from './pages/sign-in.tsx';
import { GatewaysPage } from './pages/gateways.tsx';
import { GatewayPage } from './pages/gateway.tsx';
import { NodePage } from './pages/node.tsx';
import { PipelinesPage } from './pages/pipelines.tsx';
import { RunPage } from './pages/run.tsx';
import './styles.css';

function useToken(): string | null {
  const [token, set] = useState(getToken());
  useEffect(() => {
    const on = (): void => set(getToken());
    window.addEventListener('ferry-token', on);
    return () => window.removeEventListener('ferry-token', on);
  }, []);
  return token;
}

function App() {
  const token = useToken();
  const route = useRoute();
  const section = route.page === 'pipelines' || route.page === 'run' ? 'pipelines' : 'gateways';
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to={paths.gateways()} className="brand">
          Ferry
        </Link>
        {token && (
          <nav aria-label="Sections">
            <Link to={paths.gateways()} className={section === 'gateways' ? 'current' : ''}>
              Gateways
            </Link>
            <Link to={paths.pipelines()} className={section === 'pipelines' ? 'current' : ''}>
              Pipelines and runs
            </Link>
          </nav>
        )}
        {token && (
          <button type="button" className="sign-out" onClick={() => setToken(null)}>
            Sign out
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {!token ? (
          <SignIn />
        ) : route.page === 'gateways' ? (
          <GatewaysPage />
        ) : route.page === 'gateway' ? (
          <GatewayPage name={route.gateway} />
        ) : route.page === 'node' ? (
          <NodePage gateway={route.gateway} node={route.node} />
        ) : route.page === 'pipelines' ? (
          <PipelinesPage />
        ) : route.page === 'run' ? (
          <RunPage key={route.id} id={route.id} />
        ) : (
          <div>
            <h1>No such page</h1>
            <p>
              The portal has no page at <code>{route.path}</code>. Go to the <Link to="/">gateways</Link>.
            </p>
          </div>
        )}
      </main>
    </>
  );
}

const root = document.getElementById('root');
if (root)
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
