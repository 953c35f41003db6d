/**
 * The three Reflect metadata functions @peculiar/x509's dependency injection (tsyringe) calls, which
 * it insists exist before it loads. The `reflect-metadata` package does this in full; this file does
 * the part tsyringe uses (get, get own, define) so Ferry needs no extra dependency. Imported first by
 * gateway-ca.ts, the one module that loads @peculiar/x509; it adds nothing where Reflect already has them.
 */
type Target = object;
const store = new WeakMap<Target, Map<unknown, unknown>>();

interface ReflectMetadata {
  getMetadata?(key: unknown, target: Target): unknown;
  getOwnMetadata?(key: unknown, target: Target): unknown;
  defineMetadata?(key: unknown, value: unknown, target: Target): void;
}

const R = Reflect as unknown as ReflectMetadata;
if (typeof R.getMetadata !== 'function') {
  R.getOwnMetadata = (key, target) => store.get(target)?.get(key);
  R.defineMetadata = (key, value, target) => {
    let m = store.get(target);
    if (!m) store.set(target, (m = new Map()));
    m.set(key, value);
  };
  R.getMetadata = (key, target) => {
    for (let t: Target | null = target; t !== null; t = Object.getPrototypeOf(t) as Target | null) {
      const m = store.get(t);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
}

export {};
