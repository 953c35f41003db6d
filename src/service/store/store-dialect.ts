/**
 * The two databases the store runs on: an embedded SQLite file or PostgreSQL. database.ts picks one
 * from the store's location; the migrations and the few queries whose SQL differs (row locks in
 * claim-tasks.ts) take it as an argument, so they need not know how the store was opened.
 */
export type StoreDialect = 'sqlite' | 'postgres';
