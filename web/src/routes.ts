/**
 * The portal's pages and their URLs. The service answers index.html for exactly these paths
 * (src/service/portal.ts PAGE_ROUTES), so a reload or a shared link opens the same page.
 */
import { useEffect, useState } from 'react';

export type Route =
  | { page: 'gateways' }
  | { page: 'gateway'; gateway: string }
  | { page: 'node'; gateway: string; node: string }
  | { page: 'pipelines' }
  | { page: 'run'; id: string }
  | { page: 'unknown'; path: string };

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function parseRoute(path: string): Route {
  const parts = path.split('/').filter(Boolean).map(decode);
  if (parts.length === 0 || (parts.length === 1 && parts[0] === 'gateways')) return { page: 'gateways' };
  if (parts[0] === 'gateways' && parts.length === 2) return { page: 'gateway', gateway: parts[1] ?? '' };
  if (parts[0] === 'gateways' && parts.length === 4 && parts[2] === 'nodes')
    return { page: 'node', gateway: parts[1] ?? '', node: parts[3] ?? '' };
  if (parts.length === 1 && (parts[0] === 'pipelines' || parts[0] === 'runs')) return { page: 'pipelines' };
  if (parts[0] === 'runs' && parts.length === 2) return { page: 'run', id: parts[1] ?? '' };
  return { page: 'unknown', path };
}

export const paths = {
  gateways: () => '/',
  gateway: (gw: string) => `/gateways/${encodeURIComponent(gw)}`,
  node: (gw: string, node: string) => `/gateways/${encodeURIComponent(gw)}/nodes/${encodeURIComponent(node)}`,
  pipelines: () => '/pipelines',
  run: (id: string) => `/runs/${encodeURIComponent(id)}`,
};

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  window.dispatchEvent(new Event('ferry-navigate'));
  window.scrollTo(0, 0);
}

export function useRoute(): Route {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const on = (): void => setPath(location.pathname);
    window.addEventListener('popstate', on);
    window.addEventListener('ferry-navigate', on);
    return () => {
      window.removeEventListener('popstate', on);
      window.removeEventListener('ferry-navigate', on);
    };
  }, []);
  return parseRoute(path);
}
