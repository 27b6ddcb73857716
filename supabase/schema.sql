-- Wasla's tables on Supabase (PostgreSQL 15+): the schema of the original README (uuid ids, jsonb, timestamptz,
-- its unique indexes) plus the tables and columns Wasla adds. Apply once per Supabase project:
--
--   psql "postgresql://postgres:<password>@db.<project>.supabase.co:5432/postgres" -v ON_ERROR_STOP=1 -f supabase/schema.sql
--
-- It is idempotent (`if not exists` everywhere). The sync (docs/scaling.md) upserts through PostgREST with the
-- service-role key, which bypasses row level security; RLS is enabled without policies so the anon key reads
-- nothing. Times are timestamptz; Meta's own `timestamp` fields stay Unix seconds (bigint), as Meta sends them.

create extension if not exists pgcrypto;

create table if not exists projects (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  slug text not null unique,
  is_default boolean not null default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists whatsapp_business_accounts (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  waba_id text not null unique,
  name text,
  account_status text,
  limits jsonb,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists workflows (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  name text not null,
  is_default boolean default false,
  is_active boolean default true,
  ai_enabled boolean default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists workflow_steps (
  id uuid primary key default gen_random_uuid(),
  workflow_id uuid not null references workflows (id) on delete cascade,
  position int not null default 0,
  type text not null,
  is_active boolean default true,
  config jsonb,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists whatsapp_numbers (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  whatsapp_business_account_id uuid references whatsapp_business_accounts (id) on delete set null,
  phone_number_id text not null unique,
  display_phone_number text,
  verified_name text,
  workflow_id uuid references workflows (id) on delete set null,
  is_active boolean not null default true,
  auto_registered boolean not null default false,
  quality_event text,
  messaging_limit text,
  name_status text,
  requested_verified_name text,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists contacts (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  wa_id text,
  user_id text,
  profile_name text,
  phone text,
  opted_out boolean not null default false,
  metadata jsonb,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  check (wa_id is not null or user_id is not null)
);
create unique index if not exists contacts_project_wa_id on contacts (project_id, wa_id) where wa_id is not null;
create unique index if not exists contacts_project_user_id on contacts (project_id, user_id) where user_id is not null;

-- Conversations are opened by the instance that received the message: with several instances a contact may have
-- one open conversation per instance, so there is no one-open-conversation index here (docs/scaling.md).
create table if not exists conversations (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  whatsapp_number_id uuid not null references whatsapp_numbers (id) on delete cascade,
  contact_id uuid not null references contacts (id) on delete cascade,
  status text not null default 'open',
  handoff boolean not null default false,
  assigned_user_id uuid,
  last_inbound_at timestamptz,
  last_message_at timestamptz,
  closed_at timestamptz,
  ended_reason text,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create index if not exists conversations_project_recent on conversations (project_id, last_message_at desc);

create table if not exists messages (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  whatsapp_number_id uuid not null references whatsapp_numbers (id) on delete cascade,
  workflow_id uuid not null references workflows (id),
  contact_id uuid references contacts (id) on delete set null,
  conversation_id uuid references conversations (id) on delete set null,
  whatsapp_message_id text unique,
  direction text not null,
  type text not null,
  text text,
  payload jsonb,
  status text,
  error jsonb,
  context_message_id text,
  timestamp bigint,
  webhook_event_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create index if not exists messages_conversation on messages (conversation_id, created_at);
create index if not exists messages_project_recent on messages (project_id, created_at desc);

create table if not exists message_statuses (
  id uuid primary key default gen_random_uuid(),
  whatsapp_message_id text not null,
  status text not null,
  timestamp bigint,
  recipient_id text,
  conversation_id text,
  pricing jsonb,
  metadata jsonb,
  created_at timestamptz default now()
);
create unique index if not exists message_statuses_unique on message_statuses (whatsapp_message_id, status);

-- Per instance (not synced): each instance runs its own queue. Kept for the original README's schema.
create table if not exists message_jobs (
  id uuid primary key default gen_random_uuid(),
  type text not null,
  status text not null default 'pending',
  payload jsonb not null,
  error text,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

-- `payload` is null for a correctly signed body that is not JSON (stored, marked failed): the original README's
-- `not null` cannot hold what Meta may send. `raw_body` keeps the exact bytes the signature covers.
create table if not exists webhook_events (
  id uuid primary key default gen_random_uuid(),
  source text not null,
  payload jsonb,
  raw_body text,
  signature text,
  event_hash text not null,
  headers jsonb,
  processing_status text,
  processing_error text,
  processed_at timestamptz,
  received_at timestamptz,
  created_at timestamptz default now()
);
create unique index if not exists webhook_events_hash_idx on webhook_events (event_hash);

create table if not exists media_files (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  whatsapp_number_id uuid not null references whatsapp_numbers (id) on delete cascade,
  workflow_id uuid not null references workflows (id),
  contact_id uuid references contacts (id) on delete set null,
  message_id uuid references messages (id) on delete set null,
  media_id text,
  mime_type text,
  file_size bigint,
  sha256 text,
  storage_path text,
  public_url text,
  metadata jsonb,
  created_at timestamptz default now()
);
create index if not exists media_files_message on media_files (message_id);

create table if not exists templates (
  id uuid primary key default gen_random_uuid(),
  wa_template_name text not null,
  wa_template_code text not null,
  phone_number_id uuid not null references whatsapp_numbers (id) on delete cascade,
  status text not null,
  category text not null,
  language text not null,
  preview_text text,
  variables_count int default 0,
  components jsonb,
  quality_score text,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create unique index if not exists templates_unique_idx on templates (wa_template_code, phone_number_id);

-- Per instance (not synced): their secrets are sealed with each instance's SESSION_SECRET. Kept for the
-- original README's schema.
create table if not exists integrations (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  type text not null,
  is_active boolean default true,
  config jsonb,
  created_at timestamptz default now()
);

create table if not exists webhook_endpoints (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  url text not null,
  events jsonb,
  is_active boolean default true,
  created_at timestamptz default now()
);

create table if not exists users (
  id uuid primary key default gen_random_uuid(),
  email text not null,
  password_hash text not null,
  role text not null default 'viewer',
  is_active boolean default true,
  created_at timestamptz default now()
);

do $$
declare t text;
begin
  foreach t in array array['projects', 'whatsapp_business_accounts', 'workflows', 'workflow_steps', 'whatsapp_numbers',
                           'contacts', 'conversations', 'messages', 'message_statuses', 'message_jobs', 'webhook_events',
                           'media_files', 'templates', 'integrations', 'webhook_endpoints', 'users'] loop
    execute format('alter table %I enable row level security', t);
  end loop;
end $$;

-- Several instances push the same rows (docs/scaling.md): an older state pushed late never overwrites a newer one.
-- PostgREST's merge-duplicates upsert is an INSERT … ON CONFLICT DO UPDATE; this BEFORE UPDATE trigger skips the
-- update when the incoming `updated_at` is older than the stored one.
create or replace function wasla_keep_newest() returns trigger language plpgsql as $$
begin
  if new.updated_at is not null and old.updated_at is not null and new.updated_at < old.updated_at then
    return null;
  end if;
  return new;
end $$;

do $$
declare t text;
begin
  foreach t in array array['projects', 'whatsapp_business_accounts', 'workflows', 'workflow_steps', 'whatsapp_numbers',
                           'contacts', 'conversations', 'messages', 'templates'] loop
    execute format('create or replace trigger %I before update on %I for each row execute function wasla_keep_newest()',
                   t || '_keep_newest', t);
  end loop;
end $$;
