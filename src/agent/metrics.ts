// The agent's counters in the Prometheus text exposition format, written to a file
// (node_exporter's textfile collector reads such files): events written, records
// lost in the kernel per CPU and kind, host records dropped, bad records.

export interface MetricsSnapshot {
  records: number;
  emitted: number;
  droppedHost: number;
  unresolved: number;
  waiting: number;
  decodeErrors: number;
  lostByCpu: Map<string, bigint[]>; // record kind name → count per CPU
  /** Records dropped because their container had spent its budget: record kind name → count per CPU. */
  shedByCpu?: Map<string, bigint[]>;
  /** Events the policy judged INSECURE, rules in force, and condition errors per rule (counted as no match). */
  insecure?: number;
  rules?: number;
  ruleErrors?: Record<string, number>;
  /** Cgroups the agent found not to be containers' and drops (each logged once with the reason). */
  ignoredCgroups?: number;
  /** Lines each output could not write (a full disk): dropped, counted, and told in a `lost` entry. */
  outputLost?: Array<{ output: string; lines: number }>;
}

export function renderMetrics(m: MetricsSnapshot): string {
  const lines: string[] = [];
  const counter = (name: string, help: string, value: number | bigint) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
  };
  counter('vigil_records_total', 'Records received from the kernel.', m.records);
  counter('vigil_events_total', 'Events written to the outputs.', m.emitted);
  counter('vigil_host_records_dropped_total', 'Records of host cgroups dropped after their first lookup.', m.droppedHost);
  counter('vigil_unresolved_events_total', 'Events written without a known container.', m.unresolved);
  counter('vigil_bad_records_total', 'Records that did not decode and were skipped.', m.decodeErrors);
  if (m.ignoredCgroups !== undefined) counter('vigil_ignored_cgroups_total', 'Cgroups found not to be containers\' (no runtime\'s naming, the host\'s pid namespace): their records are dropped.', m.ignoredCgroups);
  if (m.insecure !== undefined) counter('vigil_insecure_events_total', 'Events the policy judged INSECURE (since the last policy load).', m.insecure);
  if (m.rules !== undefined) lines.push('# HELP vigil_policy_rules Rules in force.', '# TYPE vigil_policy_rules gauge', `vigil_policy_rules ${m.rules}`);
  if (m.ruleErrors && Object.keys(m.ruleErrors).length > 0) {
    lines.push('# HELP vigil_rule_errors_total Evaluations of a rule that failed (a field the event lacks), counted as no match.', '# TYPE vigil_rule_errors_total counter');
    for (const [rule, n] of Object.entries(m.ruleErrors)) lines.push(`vigil_rule_errors_total{rule=${JSON.stringify(rule)}} ${n}`);
  }
  if (m.outputLost && m.outputLost.length > 0) {
    lines.push('# HELP vigil_output_lines_lost_total Lines an output could not write (a full disk) and dropped; each run of them is told in a lost entry.', '# TYPE vigil_output_lines_lost_total counter');
    for (const o of m.outputLost) lines.push(`vigil_output_lines_lost_total{output=${JSON.stringify(o.output)}} ${o.lines}`);
  }
  lines.push('# HELP vigil_pipeline_waiting Events waiting for their container to be resolved.', '# TYPE vigil_pipeline_waiting gauge', `vigil_pipeline_waiting ${m.waiting}`);
  lines.push('# HELP vigil_records_lost_total Records the kernel could not queue because the ring buffer was full.', '# TYPE vigil_records_lost_total counter');
  for (const [kind, perCpu] of m.lostByCpu) perCpu.forEach((n, cpu) => lines.push(`vigil_records_lost_total{cpu="${cpu}",kind="${kind}"} ${n}`));
  if (m.shedByCpu) {
    lines.push('# HELP vigil_records_over_budget_total Records dropped in the kernel because their container had spent its budget while the ring buffer was under pressure (each told in a lost entry naming the container).', '# TYPE vigil_records_over_budget_total counter');
    for (const [kind, perCpu] of m.shedByCpu) perCpu.forEach((n, cpu) => lines.push(`vigil_records_over_budget_total{cpu="${cpu}",kind="${kind}"} ${n}`));
  }
  return lines.join('\n') + '\n';
}
