// Bench output: an aligned text table for the terminal and a JSON record for later comparison.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describePump } from '../dawn-pump.ts';

export type Row = Record<string, string | number | boolean | null | undefined>;

export interface Column {
  key: string;
  /** Header text; default the key. */
  label?: string;
  /** Digits after the point for numbers; default: integers as is, others 2. */
  digits?: number;
}

function cell(v: Row[string], c: Column): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    return c.digits !== undefined ? v.toFixed(c.digits) : Number.isInteger(v) ? String(v) : v.toFixed(2);
  }
  return String(v);
}

/** Render rows as an aligned table: text left-aligned, numbers right-aligned. */
export function formatTable(rows: Row[], columns?: (Column | string)[]): string {
  const cols: Column[] = (columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))]).map((c) => (typeof c === 'string' ? { key: c } : c));
  const head = cols.map((c) => c.label ?? c.key);
  const body = rows.map((r) => cols.map((c) => cell(r[c.key], c)));
  const numeric = cols.map((c) => rows.some((r) => typeof r[c.key] === 'number') && rows.every((r) => r[c.key] == null || typeof r[c.key] === 'number'));
  const width = cols.map((_, i) => Math.max(head[i].length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((s, i) => (numeric[i] ? s.padStart(width[i]) : s.padEnd(width[i]))).join('  ').trimEnd();
  return [line(head), width.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function printTable(rows: Row[], columns?: (Column | string)[]): void {
  console.log(formatTable(rows, columns));
}

/** Write a bench record as JSON (creating the folder), stamped with the date, Node version and platform. */
export function writeJson(path: string, payload: { adapter: string; [key: string]: unknown }): void {
  const record = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    dawnPump: describePump(),
    ...payload,
  };
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(record, null, 2) + '\n');
}
