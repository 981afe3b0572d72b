"""Cases and the approval queue.

- `workflow` — the pure case state machine (受理 → review steps → result → certificate →
  delivered → archived; 会签/或签, return for correction, 容缺); `calendar` — working days.
- `store` + `tables` — the records in PostgreSQL; every transition in one transaction with
  its hash-chained audit entry (`core.audit`), the certificate issued with the approval.
- `streams` — review tasks on Redis Streams (a stream per review group, consumer group
  "reviewers", idempotent enqueue, XAUTOCLAIM, dead letters, random assignment).
- `effects` — what a committed transition does next (enqueue, notify the terminal,
  escalate); replayable, so a crash between commit and effects loses nothing.
- `worker` / `__main__` — automated reviewer consumers and the periodic sweep.
- `eseal` + `certificate` — Ed25519 seal with key ids, the PDF with seal image and QR code.
"""
