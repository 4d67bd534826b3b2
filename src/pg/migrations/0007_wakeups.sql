-- Migration 7: wake-ups for broadcasts too (docs/POSTGRES.md, "Wake-ups").
-- Migration 1 notifies `crier_outbox` when deliveries are inserted. A broadcast (a published
-- update's, or a standalone message's: a notice firing, a reminder) is expanded into
-- deliveries by a node's expander, which until now only its own node woke; any node's expander
-- can expand it, so a new open broadcast notifies too, as does one reopened by an upsert
-- (sled overwrites a broadcast of the same key, and so does the PostgreSQL store). The
-- expansion's own progress (an update of an open broadcast's cursor) notifies nothing: the
-- deliveries it inserts do. Dead deliveries put back in the queue notify too. The payload is
-- empty, as migration 1's: a notification is only a hint, and within one transaction
-- PostgreSQL folds identical ones into one.
CREATE FUNCTION crier_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crier_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER crier_broadcasts_notify_insert AFTER INSERT ON crier_broadcasts
    FOR EACH ROW WHEN (NOT NEW.done) EXECUTE FUNCTION crier_outbox_notify();
CREATE TRIGGER crier_broadcasts_notify_reopen AFTER UPDATE ON crier_broadcasts
    FOR EACH ROW WHEN (OLD.done AND NOT NEW.done) EXECUTE FUNCTION crier_outbox_notify();

CREATE TRIGGER crier_deliveries_notify_requeue AFTER UPDATE ON crier_deliveries
    FOR EACH ROW WHEN (OLD.state = 'dead' AND NEW.state = 'pending')
    EXECUTE FUNCTION crier_outbox_notify();
