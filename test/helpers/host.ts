// What a test needs from the host, and the reason to skip when it is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const TEST_IMAGES = { busybox: 'vigil-test/busybox:1', bash: 'vigil-test/bash:2' } as const;

/** Why the kernel-and-container tests cannot run here, or undefined when they can. */
export function missingForContainerTests(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to load BPF programs';
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'kernel has no BTF (/sys/kernel/btf/vmlinux)';
  if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0) return 'no Docker engine answers (run scripts/bootstrap.sh)';
  for (const image of Object.values(TEST_IMAGES)) {
    if (spawnSync('docker', ['image', 'inspect', image], { stdio: 'ignore' }).status !== 0) return `test image ${image} missing (run scripts/build-test-images.sh)`;
  }
  return undefined;
}

/** Realistic workloads (scripts/build-test-images.sh) for the noise-budget and image tests; not in
 * TEST_IMAGES, so the tests that need only those do not skip when these are missing. */
export const WORKLOAD_IMAGES = { nginx: 'vigil-test/nginx:1', redis: 'vigil-test/redis:1', python: 'vigil-test/python:1' } as const;

/** Why the workload images cannot be run here, or undefined when they can. */
export function missingWorkloadImages(): string | undefined {
  if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0) return 'no Docker engine answers (run scripts/bootstrap.sh)';
  for (const image of Object.values(WORKLOAD_IMAGES)) {
    if (spawnSync('docker', ['image', 'inspect', image], { stdio: 'ignore' }).status !== 0) return `workload image ${image} missing (run scripts/build-test-images.sh)`;
  }
  return undefined;
}

export function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A container name no other test run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Runs a busybox container's script to its end, removes the container, and returns its id. */
export function runToEnd(prefix: string, script: string): string {
  const name = uniqueName(prefix);
  try {
    const id = docker('run', '-d', '--pull', 'never', '--name', name, TEST_IMAGES.busybox, 'sh', '-c', script);
    docker('wait', name);
    return id;
  } finally {
    docker('rm', '-f', name);
  }
}
