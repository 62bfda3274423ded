// Types of node/stderr-filter.mjs (plain JavaScript: node/bin.mjs loads it before the TypeScript loader).
import type { Readable, Writable } from 'node:stream';

export declare const STDERR_FD_ENV: string;
export declare const RAW_STDERR_ENV: string;
export declare function isDawnNoise(line: string): boolean;
export declare function filterLines(input: Readable, output: Writable): Promise<void>;
export declare function runFiltered(script: string): boolean;
export declare function useStderrFd(): void;
