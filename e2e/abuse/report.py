"""Print the abuse suite's results (build/abuse-results.jsonl) as a table."""

import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1] if len(sys.argv) > 1 else "build/abuse-results.jsonl")]
print(f"{'attack':36} {'server':10} {'RSS before/peak/after MiB':>26} {'bystander worst ms':>19}")
for r in rows:
    rss = f"{r['rss_before_mib']}/{r['rss_peak_mib']}/{r['rss_after_mib']}"
    print(f"{r['attack']:36} {r['server']:10} {rss:>26} {r['bystander_worst_ms']:>19}")
