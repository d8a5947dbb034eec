"""The notifier: alerts from the `alerts` topic to the ops channels, each once per destination.

- `notifier`: the alerts consumer, one outbox per destination, commits when all have delivered.
- `outbox`: a destination's queue and worker. `destinations`: Slack/Mattermost, Telegram, webhooks, stdout.
- `messages`: alert texts and digests. `pacing`: rate limits, storms and retry delays.
- `held_back`: alerts too old to post (a backfill's), counted, and the one line per destination about them.
- `ledger`: what was posted where (the ledger topic). `offset_book`: which offsets are safe to commit.
- `settings`: the notifier's settings and the destinations file.
"""
