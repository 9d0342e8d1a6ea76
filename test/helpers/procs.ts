import { readdirSync, readFileSync } from 'node:fs';

/** ppid and process group of a live process, from /proc/<pid>/stat; null when it is gone (or a zombie). */
export function procInfo(pid: number): { ppid: number; pgrp: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z' || f[0] === 'X') return null;
    return { ppid: Number(f[1]), pgrp: Number(f[2]) };
  } catch {
    return null;
  }
}

function allPids(): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

/** Every live process whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  return allPids().filter((p) => procInfo(p)?.ppid === pid);
}

/** Every live process of process group `pgrp`. */
export function groupMembers(pgrp: number): number[] {
  return allPids().filter((p) => procInfo(p)?.pgrp === pgrp);
}

export function alive(pid: number): boolean {
  return procInfo(pid) !== null;
}
