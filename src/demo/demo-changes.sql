-- What changes in the warehouse between the demo's two runs.
UPDATE analytics.dim_companies SET plan = 'enterprise', arr_usd = 95000 WHERE company_id = 'globex'; -- upgrade
UPDATE analytics.dim_companies SET industry = NULL WHERE company_id = 'acme';                      -- becomes empty: $unset
DELETE FROM analytics.dim_companies WHERE company_id = 'initech';                                   -- churned: mirror $delete
INSERT INTO analytics.dim_companies VALUES
  ('stark', 'Stark Industries', 'starter', 12000, '2026-11-22 09:00:00+00', 'Defense', false, '{trial}'); -- new
UPDATE analytics.dim_users SET role = 'admin' WHERE user_id = 'alice' AND company_id = 'globex';     -- only Alice @ Globex
INSERT INTO analytics.dim_users VALUES
  ('frank', 'stark', 'Frank Castle', 'frank@stark.test', 'owner', 2, '2026-11-23 06:00:00+00');
UPDATE analytics.dim_teams SET headcount = 27 WHERE team_id = 'engineering' AND company_id = 'acme';
