/** Vite turns a CSS import into a stylesheet link in the build; to TypeScript it is an empty module. */
declare module '*.css';
