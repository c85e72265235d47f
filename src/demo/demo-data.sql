-- Sample warehouse tables for the demo: a hierarchical B2B model (companies → users, companies → teams).
CREATE SCHEMA analytics;

CREATE TABLE analytics.dim_companies (
  company_id    text PRIMARY KEY,
  company_name  text NOT NULL,
  plan          text,
  arr_usd       numeric(14, 2),
  created_at    timestamptz,
  industry      text,
  is_enterprise boolean,
  tags          text[]
);
INSERT INTO analytics.dim_companies VALUES
  ('acme',    'Acme Corporation', 'enterprise', 120000.00, '2021-03-04 09:30:00+01', 'Manufacturing', true,  '{b2b,priority}'),
  ('globex',  'Globex',           'growth',      48000.50, '2022-07-19 16:00:00-07', 'Energy',        false, '{b2b}'),
  ('initech', 'Initech',          'starter',      9000.00, '2023-01-10 12:00:00+00', 'Software',      false, NULL),
  ('umbrella','Umbrella Corp',    'enterprise', 310000.00, '2020-11-30 08:15:00+00', 'Pharma',        true,  '{b2b,"at risk"}'),
  ('hooli',   'Hooli',            'growth',      61000.00, '2022-02-02 10:00:00+00', NULL,            false, '{}');

CREATE TABLE analytics.dim_users (
  user_id       text NOT NULL,
  company_id    text NOT NULL,
  full_name     text,
  email         text,
  role          text,
  seats         integer,
  last_login_at timestamptz,
  PRIMARY KEY (company_id, user_id)
);
-- "alice" works at two companies: in a hierarchical project these are two different users.
INSERT INTO analytics.dim_users VALUES
  ('alice', 'acme',     'Alice Smith',  'alice@acme.test',     'admin',  5, '2026-11-20 08:00:00+00'),
  ('alice', 'globex',   'Alice Jones',  'alice@globex.test',   'member', 1, '2026-11-21 14:30:00+00'),
  ('bob',   'acme',     'Bob Brown',    'bob@acme.test',       'member', 1, NULL),
  ('carol', 'initech',  'Carol White',  'carol@initech.test',  'owner',  3, '2026-11-22 19:45:00+00'),
  ('dave',  'umbrella', 'Dave Black',   'dave@umbrella.test',  'admin',  9, '2026-10-01 07:00:00+00'),
  ('erin',  'hooli',    'Erin Green',   'erin@hooli.test',     'member', 1, '2026-11-02 11:11:00+00');

CREATE TABLE analytics.dim_teams (
  team_id    text NOT NULL,
  company_id text NOT NULL,
  team_name  text,
  headcount  integer,
  PRIMARY KEY (company_id, team_id)
);
INSERT INTO analytics.dim_teams VALUES
  ('engineering', 'acme',     'Engineering', 25),
  ('sales',       'acme',     'Sales',       12),
  ('engineering', 'globex',   'Platform',     8),
  ('research',    'umbrella', 'Research',    40);
