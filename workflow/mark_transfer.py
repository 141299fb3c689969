"""Record what the teacher's transfer-set labelling left in its metrics.json (the output of the
workflow's teacher_transfer rule: the teacher's own metrics.json is the teacher rule's).

    python workflow/mark_transfer.py results/runs/teacher/metrics.json 25000 results/runs/teacher/transfer.json
    (n "all": the whole deduplicated pool, whatever its size)
"""
import json
import sys
from pathlib import Path

teacher_file, n, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
n = n if n == "all" else int(n)
teacher = json.loads(teacher_file.read_text())
transfer = teacher.get("logits", {}).get("transfer")
if not transfer or (n != "all" and transfer["n"] < n):
    sys.exit(f"{teacher_file}: the teacher cached logits for {transfer and transfer['n']} unlabelled reviews, not {n}")
out.write_text(json.dumps({"transfer_n": n, "teacher_checkpoint": teacher["checkpoint_hash"],
                           "logits": transfer}, indent=1) + "\n")
print(f"{out}: {transfer['n']} transfer-set logits of teacher checkpoint {teacher['checkpoint_hash']}")
