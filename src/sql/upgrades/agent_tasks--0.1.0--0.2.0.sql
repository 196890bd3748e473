-- agent_tasks 0.1.0 -> 0.2.0.  Every schema change since 0.1.0, in the order
-- made; test/upgrade checks that the result equals a fresh 0.2.0 install.

\echo Use "ALTER EXTENSION agent_tasks UPDATE TO '0.2.0'" to load this file. \quit
