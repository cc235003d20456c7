-- Retention: each tenant keeps finished executions (and standalone tasks) for retention_days
-- after they finished; the retention sweep deletes older ones with everything that belongs to
-- them, in small batches.
ALTER TABLE tenants ADD COLUMN retention_days integer NOT NULL DEFAULT 30
    CHECK (retention_days BETWEEN 1 AND 36500);
-- The sweep walks finished rows in completion order per tenant; claims never read these
-- indexes (they cover only finished rows), so deleting does not touch the claim paths.
CREATE INDEX workflow_executions_finished ON workflow_executions (tenant_id, completed_at)
    WHERE completed_at IS NOT NULL;
CREATE INDEX task_executions_finished ON task_executions (tenant_id, completed_at)
    WHERE completed_at IS NOT NULL AND workflow_id IS NULL;
-- A child that outlives its parent's retention keeps running without a parent.
ALTER TABLE workflow_executions DROP CONSTRAINT workflow_executions_parent_id_fkey;
ALTER TABLE workflow_executions ADD CONSTRAINT workflow_executions_parent_id_fkey
    FOREIGN KEY (parent_id) REFERENCES workflow_executions(id) ON DELETE SET NULL;

-- Listing by queue and by parent, newest first (kind and status have theirs).
CREATE INDEX workflow_executions_list_queue ON workflow_executions (tenant_id, queue, created_at DESC, id DESC);

-- Search attributes a workflow (or a client) sets on its execution: one row per key, the value
-- as given plus a typed copy for comparisons. A string that reads as an RFC 3339 time also has
-- time_value, so it compares as a time.
CREATE TABLE workflow_search_attributes (
    execution_id  uuid NOT NULL REFERENCES workflow_executions(id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL,
    key           text NOT NULL,
    value         jsonb NOT NULL,
    text_value    text,
    num_value     double precision,
    bool_value    boolean,
    time_value    timestamptz,
    PRIMARY KEY (execution_id, key)
);
CREATE INDEX workflow_search_attributes_text ON workflow_search_attributes (tenant_id, key, text_value)
    WHERE text_value IS NOT NULL;
CREATE INDEX workflow_search_attributes_num ON workflow_search_attributes (tenant_id, key, num_value)
    WHERE num_value IS NOT NULL;
CREATE INDEX workflow_search_attributes_time ON workflow_search_attributes (tenant_id, key, time_value)
    WHERE time_value IS NOT NULL;
