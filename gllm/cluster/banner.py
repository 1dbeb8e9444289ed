"""The text printed once the balancer answers: where to send requests, and what runs where."""

from __future__ import annotations

import json
import shlex

from gllm.cluster.plan import WILDCARDS, ClusterPlan


def public_url(plan: ClusterPlan) -> str:
    """The balancer's URL for clients on this machine."""
    return plan.balancer_url


def banner(plan: ClusterPlan) -> str:
    """The multi-line start-up message (no secrets: the admin key is referred to, never printed)."""
    url = public_url(plan)
    model = plan.load_model or "MODEL"
    gpus_word = "labels" if plan.engine == "sim" else "GPUs"
    lines = [
        f"GLLM cluster: balancer on {url}, {len(plan.worker_gpus)} worker(s), engine {plan.engine_cmd or plan.engine}",
    ]
    if plan.ip in WILDCARDS:
        lines.append(
            f"  listening on all interfaces (port {plan.port}): other machines use this host's address"
        )
    for slot in plan.workers:
        lines.append(
            f"  {slot.name}: {plan.worker_url(slot)} (engine port {slot.engine_port}, "
            f"{gpus_word} {slot.gpu_list or '-'})"
        )
    lines.append("")
    if not plan.load_model:
        auth = " -H 'Authorization: Bearer $GLLM_ADMIN_KEY'" if plan.admin_key else ""
        body = shlex.quote(json.dumps({"model_path": "MODEL"}))
        lines += [
            "No model loaded yet. Load one on every worker with:",
            f"  curl -X POST {url}/load_model -H 'Content-Type: application/json'{auth} -d {body}",
            "",
        ]
    chat = {"model": model, "messages": [{"role": "user", "content": "Hello!"}]}
    lines += [
        "Send OpenAI-compatible requests to the balancer:",
        f"  curl {url}/v1/chat/completions -H 'Content-Type: application/json' \\",
        f"    -d {shlex.quote(json.dumps(chat))}",
        f'  OpenAI SDK: OpenAI(base_url="{url}/v1", api_key="unused")',
        f'  GLLM client: gllm.GLLM("{url}")',
        f"  worker states: curl {url}/workers",
        "Press Ctrl-C to stop the cluster.",
    ]
    return "\n".join(lines)
