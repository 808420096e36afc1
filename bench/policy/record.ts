// Records the event mix bench/policy judges: the real agent (default policy) watching
// containers that do what containers do (shell scripts, reads below /etc, execs, a web
// server and its clients over loopback, a database) and a few attacks, written as JSON
// lines, gzipped, to bench/policy/mix.jsonl.gz. Recorded once and committed, so the benchmark and the
// differential test judge the same events on every machine and need no containers.
// `vigil bench policy --record` records it again.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { VigilEvent } from '../../src/events/index.js';
import { startAgent } from '../../test/helpers/agent-process.js';
import { docker, TEST_IMAGES, uniqueName, WORKLOAD_IMAGES } from '../../test/helpers/host.js';

interface Workload { image: string; script: string; shell?: string; dockerArgs?: string[]; exec?: string[] }

const ordinary = `
for i in $(seq 1 25); do
  cat /etc/hostname >/dev/null; head -n 1 /etc/passwd >/dev/null; ls -l /etc >/dev/null; id >/dev/null
  grep -c root /etc/group >/dev/null; wc -l /etc/services >/dev/null 2>&1
  echo "line $i" >>/tmp/app.log; cp /etc/hosts /tmp/hosts.$i; rm -f /tmp/hosts.$i
  date >/dev/null; uname -a >/dev/null; sleep 0.01
done`;

const attacks = `
cat /etc/shadow >/dev/null 2>&1; cat /etc/passwd >/dev/null
cp /bin/ls /tmp/ls2 && /tmp/ls2 / >/dev/null; chmod u+s /tmp/ls2
mkdir -p /etc/cron.d && echo '* * * * * root true' >/etc/cron.d/job
echo 'alias ls=true' >>/root/.bashrc; ln -sf /dev/null /root/.bash_history
touch /usr/bin/dropped && rm -f /usr/bin/dropped
cat /proc/1/environ >/dev/null 2>&1; : >/var/log/app.log 2>/dev/null
p=20001; while [ $p -le 20025 ]; do (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; p=$((p+1)); done
(exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null
bash -c 'exec bash -c true </dev/tcp/127.0.0.1/22' 2>/dev/null
ps >/dev/null 2>&1; nsenter --help >/dev/null 2>&1; true`;

const web = `
nginx >/dev/null 2>&1 &
sleep 1
for i in $(seq 1 40); do wget -q -O /dev/null http://127.0.0.1/ 2>/dev/null; done
kill %1; wait`;

const python = `
python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 &
sleep 1.5
for i in $(seq 1 20); do wget -q -O /dev/null http://127.0.0.1:8000/ 2>/dev/null; done
python3 -c 'import os, json; [open("/etc/os-release").read() for _ in range(30)]; json.dumps(dict(os.environ))'
kill %1; wait`;

const redis = `
redis-server --port 6380 --save '' >/dev/null 2>&1 &
sleep 1
for i in $(seq 1 15); do (printf 'PING\\r\\n'; sleep 0.05) | nc 127.0.0.1 6380 >/dev/null 2>&1; done
kill %1; wait`;

const WORKLOADS: Workload[] = [
  { image: TEST_IMAGES.busybox, script: ordinary },
  { image: TEST_IMAGES.bash, script: attacks, shell: 'bash' },
  { image: WORKLOAD_IMAGES.nginx, script: web },
  { image: WORKLOAD_IMAGES.python, script: python },
  { image: WORKLOAD_IMAGES.redis, script: redis },
  // A capability outside Docker's default set, and a mount with it.
  { image: TEST_IMAGES.busybox, script: 'mkdir -p /mnt/x && mount -t tmpfs none /mnt/x && umount /mnt/x; true', dockerArgs: ['--cap-add', 'SYS_ADMIN'] },
  // A shell someone entered with docker exec.
  { image: TEST_IMAGES.busybox, script: 'sleep 3', exec: ['sh', '-c', 'cat /etc/hostname; ls /etc >/dev/null; id'] },
];

/** Keeps every event of the recorded containers (the runtime's set-up included: the agent judges it too), at most `limit`. */
export async function recordMix(path: string, limit = 3000): Promise<{ events: number; bytes: number }> {
  const agent = await startAgent([]);
  const ids = new Set<string>();
  let events: VigilEvent[] = [];
  try {
    for (const w of WORKLOADS) {
      const name = uniqueName('vigil-bench-mix');
      const id = docker('run', '-d', '--pull', 'never', ...(w.dockerArgs ?? []), '--name', name, w.image, w.shell ?? 'sh', '-c', w.script);
      ids.add(id);
      if (w.exec) {
        await new Promise((r) => setTimeout(r, 500));
        spawnSync('docker', ['exec', name, ...w.exec], { stdio: 'ignore' });
      }
      docker('wait', name);
      docker('rm', '-f', name);
    }
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    events = (await agent.stop()).events;
  }
  const ours = events.filter((e: VigilEvent) => ids.has(e.container.id));
  // Thin the ordinary events evenly to the limit; every INSECURE one stays.
  const insecure = ours.filter((e) => e.verdict.level === 'INSECURE');
  const normal = ours.filter((e) => e.verdict.level !== 'INSECURE');
  const room = Math.max(0, limit - insecure.length);
  const step = normal.length > room ? normal.length / room : 1;
  const keep = new Set<VigilEvent>(insecure);
  for (let i = 0; i < normal.length && keep.size < limit; i += step) keep.add(normal[Math.floor(i)] as VigilEvent);
  const kept = ours.filter((e) => keep.has(e));
  const text = kept.map((e) => JSON.stringify(e)).join('\n') + '\n';
  const gz = gzipSync(text, { level: 9 });
  writeFileSync(path, gz);
  return { events: kept.length, bytes: gz.length };
}
