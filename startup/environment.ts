/**
 * The process environment as the configuration reads it: process.env at the
 * one call site in each main.ts, a plain object in tests. No other module
 * reads process.env (../../shared/STYLE.md, Configuration).
 */
export type Environment = Readonly<Record<string, string | undefined>>;
