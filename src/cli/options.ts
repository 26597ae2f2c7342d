import { InvalidArgumentError } from 'commander';

/** `a,b` → `['a', 'b']`; repeating the flag adds to the list. */
export const list = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** A whole number ≥ 0, or commander's usage error. */
export const wholeNumber = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
};
