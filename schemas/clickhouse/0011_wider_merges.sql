-- The loader inserts into every table about once a second, so each table gets a small part a second, and
-- the default merge selector (merge_selector_base = 5) merges a few small parts at a time, rewriting each
-- row many times: in `pulse bench` on realistic data, merges were about 40% of the loader's CPU. With a
-- base of 20 a merge takes ~20 small parts at once: each row is rewritten about half as often (merge CPU
-- 2.1-2.5 s -> 0.9-1.1 s for 400k events, the loader's process 15-20% less), at the cost of up to ~20
-- more small parts per table for a FINAL read to look at. Exactness does not depend on merges (FINAL and
-- the deduplication tokens do not wait for them).
ALTER TABLE events MODIFY SETTING merge_selector_base = 20;
ALTER TABLE engagement_segment_hour MODIFY SETTING merge_selector_base = 20;
ALTER TABLE community_ingest_minute MODIFY SETTING merge_selector_base = 20;
ALTER TABLE engagement_minute MODIFY SETTING merge_selector_base = 20;
ALTER TABLE comment_sla MODIFY SETTING merge_selector_base = 20;
ALTER TABLE alerts MODIFY SETTING merge_selector_base = 20;
