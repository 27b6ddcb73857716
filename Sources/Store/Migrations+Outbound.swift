// The migrations of the outbound side (webhooks, integrations): v3 onwards. `Migrations.all` lists them in order.
extension Migrations {
    static let v3 = """
        -- v3: the outbound webhook outbox (docs/outbound-webhooks.md): endpoint state (active / paused / disabled),
        -- leases and per-conversation ordering on deliveries, and one row per attempt (the delivery log).
        ALTER TABLE webhook_endpoints ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
            CHECK (state IN ('active', 'paused', 'disabled'));
        ALTER TABLE webhook_endpoints ADD COLUMN state_reason TEXT;
        ALTER TABLE webhook_endpoints ADD COLUMN state_changed_at INTEGER;
        CREATE INDEX webhook_endpoints_number ON webhook_endpoints (whatsapp_number_id);
        ALTER TABLE webhook_deliveries ADD COLUMN ordering_key TEXT;
        ALTER TABLE webhook_deliveries ADD COLUMN lease_until INTEGER;
        ALTER TABLE webhook_deliveries ADD COLUMN first_attempt_at INTEGER;
        ALTER TABLE webhook_deliveries ADD COLUMN is_replay INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, ordering_key, status);
        CREATE TABLE webhook_attempts (
            id INTEGER PRIMARY KEY,
            delivery_id TEXT NOT NULL,
            endpoint_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            started_at INTEGER NOT NULL,
            duration_ms INTEGER NOT NULL,
            response_status INTEGER,
            error_class TEXT,
            error TEXT,
            response_excerpt TEXT,
            is_replay INTEGER NOT NULL DEFAULT 0,
            is_test INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE INDEX webhook_attempts_endpoint_time ON webhook_attempts (endpoint_id, started_at);
        CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
        """

    static let v4 = """
        -- v4: integrations (ERP / CRM / helpdesk / custom) deliver through the same outbox as webhook endpoints:
        -- each has an endpoint row with no number (project-wide), the integration it belongs to, and how it
        -- authenticates (bearer, X-API-Key or basic).
        ALTER TABLE webhook_endpoints ADD COLUMN integration_id TEXT REFERENCES integrations (id) ON DELETE CASCADE;
        ALTER TABLE webhook_endpoints ADD COLUMN auth TEXT CHECK (auth IS NULL OR json_valid(auth));
        CREATE INDEX webhook_endpoints_project_wide ON webhook_endpoints (project_id) WHERE whatsapp_number_id IS NULL;
        """

    static let v5 = """
        -- v5: batching of whatsapp.message.received per conversation (outbound-webhooks.md §5). An open batch
        -- collects payloads until its window ends or it is full; then it becomes one delivery, formed once.
        CREATE TABLE webhook_batches (
            id TEXT PRIMARY KEY,
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
            ordering_key TEXT NOT NULL,
            opened_at INTEGER NOT NULL,
            size INTEGER NOT NULL,
            items TEXT NOT NULL CHECK (json_valid(items))
        ) STRICT;
        CREATE UNIQUE INDEX webhook_batches_open ON webhook_batches (endpoint_id, ordering_key);
        CREATE INDEX webhook_batches_due ON webhook_batches (opened_at);
        ALTER TABLE webhook_deliveries ADD COLUMN batch_size INTEGER;
        """

    static let v6 = """
        -- v6: secret rotation of outbound endpoints: the previous secret keeps signing webhook-signature for 24 h.
        ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT;
        ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_until INTEGER;
        """

    static let v7 = """
        -- v7: whatsapp.conversation.inactive (once per quiet spell and endpoint) and field mapping of integration
        -- payloads (an object of output field -> JSON path into the v2 payload).
        ALTER TABLE webhook_endpoints ADD COLUMN inactivity_minutes INTEGER NOT NULL DEFAULT 60;
        ALTER TABLE webhook_endpoints ADD COLUMN mapping TEXT CHECK (mapping IS NULL OR json_valid(mapping));
        CREATE TABLE webhook_inactivity (
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
            conversation_id TEXT NOT NULL,
            last_message_at INTEGER NOT NULL,
            PRIMARY KEY (endpoint_id, conversation_id)
        ) STRICT, WITHOUT ROWID;
        """

    static let v8 = """
        -- v8: the delivery log is trimmed by age and counted over the last 15 minutes: both read by start time.
        CREATE INDEX webhook_attempts_started ON webhook_attempts (started_at);
        """
}

extension Migrations {
    static let v9 = """
        -- v9: the Supabase sync outbox. Triggers (installed only while Supabase is configured) add one row per
        -- changed row, in the transaction of the change; a new change of a queued row bumps `version`, so the
        -- worker never drops a change it has not pushed. Left in place when Supabase is switched off.
        CREATE TABLE sync_outbox (
            seq INTEGER PRIMARY KEY,
            table_name TEXT NOT NULL,
            row_id TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
            version INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            next_attempt_at INTEGER NOT NULL DEFAULT 0,
            queued_at INTEGER NOT NULL
        ) STRICT;
        CREATE UNIQUE INDEX sync_outbox_row ON sync_outbox (table_name, row_id);
        """

    static let v10 = """
        -- v10: the job depth gauge counts jobs by state and type once a second. With only (status, run_at) it read
        -- every dead job's row and sorted them all for GROUP BY: memory and time growing with the dead letters
        -- (8 MiB of sorter at the peak of a soak, heaptrack). In (status, type) order the index alone answers it.
        CREATE INDEX message_jobs_state ON message_jobs (status, type);
        """

    static let v11 = """
        -- v11: no query reads messages by contact (threads go by conversation), and this index cost every inbound
        -- message a write on a random leaf (entries cluster by contact): about a tenth of the processing time
        -- (ProcessBench). Deleting a contact, which nothing in Wasla does, would scan messages for ON DELETE SET NULL.
        DROP INDEX messages_contact;
        """

    static let v12 = """
        -- v12: the job claim reads each (state, type) in run_at order from this index and stops after the few it
        -- takes; it read and sorted every due job before. (status, type) still leads it for the depth gauge.
        DROP INDEX message_jobs_state;
        CREATE INDEX message_jobs_state ON message_jobs (status, type, run_at);
        """

    static let v13 = """
        -- v13: the overview's chart counts the last hour's events by minute. Without an index that was a scan of
        -- every event ever stored, bodies and all, and a sort of the hour's rows, on each page load (in a soak,
        -- two thirds of the server's SQLite allocations). This index answers it in minute order: a range, no sort.
        CREATE INDEX webhook_events_minute ON webhook_events (received_at / 60000);
        """

    static let v14 = """
        -- v14: since v12 the claim reads (status, type, run_at) and no query reads (status, run_at) any more (the
        -- counts by status use the newer index too); it cost every job an index entry on insert and two on each
        -- change of state.
        DROP INDEX message_jobs_due;
        """

    static let v15 = """
        -- v15: SQLite evaluates a CHECK of `column IN (three or more constants)` by building a temporary B-tree of
        -- the list each time a statement checks it (OpenEphemeral: a pager opened, filled and closed), and two
        -- constants or an OR of equalities as plain comparisons. On the tables written per webhook, per job and per
        -- delivery this cost each INSERT and each change of state about 2 µs (1.2 µs for the whole insert without
        -- it). The constraints below say the same with OR: every stored row satisfies both forms, so the table
        -- definitions are edited in place (SQLite's documented way to change a CHECK without copying the table),
        -- and the migrator then bumps the schema cookie so every connection re-reads them.
        PRAGMA writable_schema = ON;
        UPDATE sqlite_schema SET sql = replace(sql,
            'CHECK (processing_status IN (''pending'', ''processed'', ''failed'', ''unrouted''))',
            'CHECK (processing_status = ''pending'' OR processing_status = ''processed''
                       OR processing_status = ''failed'' OR processing_status = ''unrouted'')')
        WHERE type = 'table' AND name = 'webhook_events';
        UPDATE sqlite_schema SET sql = replace(sql,
            'CHECK (status IN (''pending'', ''running'', ''done'', ''failed'', ''dead''))',
            'CHECK (status = ''pending'' OR status = ''running'' OR status = ''done'' OR status = ''failed''
                       OR status = ''dead'')')
        WHERE type = 'table' AND name = 'message_jobs';
        UPDATE sqlite_schema SET sql = replace(sql,
            'CHECK (status IN (''pending'', ''delivered'', ''failed'', ''dead''))',
            'CHECK (status = ''pending'' OR status = ''delivered'' OR status = ''failed'' OR status = ''dead'')')
        WHERE type = 'table' AND name = 'webhook_deliveries';
        PRAGMA writable_schema = OFF;
        """
}
