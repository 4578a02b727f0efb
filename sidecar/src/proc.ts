/**
 * Finding the service's process through /proc. In a pod with `shareProcessNamespace: true` the
 * sidecar sees the service's processes, and `/proc/<pid>/root` (its filesystem) and
 * `/proc/<pid>/cwd` (its working folder) lead into the service container's files. The kernel
 * allows that only to a process of the same user (or with CAP_SYS_PTRACE), so the sidecar
 * must run as the service's UID. Everything here only reads.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface ProcOptions {
  /** Mount point of procfs (tests may point elsewhere). */
  procRoot?: string;
  /** This process, never chosen for a command-line match. */
  selfPid?: number;
}

async function pids(procRoot: string): Promise<number[]> {
  const names = await readdir(procRoot);
  return names
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

/** A process's command line with arguments separated by spaces ('' when unreadable). */
export async function commandLine(pid: number, procRoot = '/proc'): Promise<string> {
  try {
    return (await readFile(`${procRoot}/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** The kernel's start time of a process (field 22 of stat): tells a restarted pid apart. */
export async function startTime(pid: number, procRoot = '/proc'): Promise<string | undefined> {
  try {
    const stat = await readFile(`${procRoot}/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** The oldest process (lowest pid) whose command line contains `match`, other than this one. */
export async function findByCommandLine(match: string, options: ProcOptions = {}): Promise<number | undefined> {
  const procRoot = options.procRoot ?? '/proc';
  const self = options.selfPid ?? process.pid;
  for (const pid of await pids(procRoot)) {
    if (pid === self) continue;
    if ((await commandLine(pid, procRoot)).includes(match)) return pid;
  }
  return undefined;
}

/** Socket inodes listening on `port` (IPv4 and IPv6), from this network namespace's tables. */
export async function listeningInodes(port: number, procRoot = '/proc'): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    let text: string;
    try {
      text = await readFile(`${procRoot}/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      const state = f[3];
      const inode = f[9];
      if (local === undefined || state !== '0A' || inode === undefined || inode === '0') continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(inode);
    }
  }
  return inodes;
}

/** The process holding a socket that listens on `port` (the pod shares one network namespace). */
export async function findByListeningPort(port: number, options: ProcOptions = {}): Promise<number | undefined> {
  const procRoot = options.procRoot ?? '/proc';
  const inodes = await listeningInodes(port, procRoot);
  if (inodes.size === 0) return undefined;
  for (const pid of await pids(procRoot)) {
    let fds: string[];
    try {
      fds = await readdir(`${procRoot}/${pid}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    for (const fd of fds) {
      const target = await readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m !== null && inodes.has(m[1]!)) return pid;
    }
  }
  return undefined;
}
