package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/internal/batchplan"
)

// webhookSchema is the webhooks' tables: subscriptions, and their
// deliveries, which are both the queue the dispatcher claims from (the
// partial index of pending ones by due time) and the delivery log.
const webhookSchema = `
CREATE TABLE IF NOT EXISTS webhooks (
	id              TEXT PRIMARY KEY,
	org             TEXT NOT NULL,
	url             TEXT NOT NULL,
	events          TEXT NOT NULL, -- JSON array of event names
	secret          TEXT NOT NULL,
	description     TEXT NOT NULL DEFAULT '',
	disabled        INTEGER NOT NULL DEFAULT 0,
	disabled_reason TEXT NOT NULL DEFAULT '',
	failures        INTEGER NOT NULL DEFAULT 0,
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_org ON webhooks (org, id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
	id              TEXT PRIMARY KEY,
	webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	org             TEXT NOT NULL,
	event_id        TEXT NOT NULL,
	event_type      TEXT NOT NULL,
	import_id       TEXT NOT NULL,
	payload         BLOB NOT NULL,
	state           TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	next_attempt_at TEXT NOT NULL,
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	delivered_at    TEXT
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_log ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
`

const webhookCols = `id, org, url, events, secret, description, disabled, disabled_reason, failures, created_at, updated_at`

func scanWebhook(row interface{ Scan(...any) error }) (store.Webhook, error) {
	var w store.Webhook
	var events, created, updated string
	var disabled int
	if err := row.Scan(&w.ID, &w.Org, &w.URL, &events, &w.Secret, &w.Description, &disabled, &w.DisabledReason,
		&w.Failures, &created, &updated); err != nil {
		return w, err
	}
	w.Disabled = disabled != 0
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return w, fmt.Errorf("sqlite: webhook %s: events: %w", w.ID, err)
	}
	var err error
	if w.CreatedAt, err = parseTime(created); err != nil {
		return w, err
	}
	w.UpdatedAt, err = parseTime(updated)
	return w, err
}

// CreateWebhook stores a new webhook.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) error {
	now := batchplan.Now()
	if w.CreatedAt.IsZero() {
		w.CreatedAt = now
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (`+webhookCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
			w.ID, w.Org, w.URL, jsonArray(w.Events), w.Secret, w.Description, boolInt(w.Disabled), w.DisabledReason,
			fmtTime(w.CreatedAt), fmtTime(w.CreatedAt))
		if err != nil {
			return fmt.Errorf("sqlite: create webhook %s: %w", w.ID, err)
		}
		return nil
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// GetWebhook returns org's webhook id.
func (s *Store) GetWebhook(ctx context.Context, org, id string) (store.Webhook, error) {
	return getWebhook(ctx, s.db, org, id)
}

func getWebhook(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, org, id string) (store.Webhook, error) {
	w, err := scanWebhook(q.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE org = ? AND id = ?`, org, id))
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("sqlite: get webhook %s: %w", id, err)
	}
	return w, nil
}

// ListWebhooks pages through org's webhooks by id.
func (s *Store) ListWebhooks(ctx context.Context, org, after string, limit int) ([]store.Webhook, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE org = ? AND id > ? ORDER BY id LIMIT ?`,
		org, after, batchplan.ClampLimit(limit, 50, 1000))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list webhooks: %w", err)
	}
	defer rows.Close()
	var out []store.Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// DeleteWebhook removes a webhook; its deliveries go with it (ON DELETE CASCADE).
func (s *Store) DeleteWebhook(ctx context.Context, org, id string) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE org = ? AND id = ?`, org, id)
		if err != nil {
			return fmt.Errorf("sqlite: delete webhook %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
		}
		return nil
	})
}

// EnableWebhook enables or disables a webhook.
func (s *Store) EnableWebhook(ctx context.Context, org, id string, enabled bool, reason string) (store.Webhook, error) {
	var w store.Webhook
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		q := `UPDATE webhooks SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE org = ? AND id = ?`
		args := []any{reason, fmtTime(batchplan.Now()), org, id}
		if enabled {
			q = `UPDATE webhooks SET disabled = 0, disabled_reason = '', failures = 0, updated_at = ? WHERE org = ? AND id = ?`
			args = args[1:]
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("sqlite: enable webhook %s: %w", id, err)
		}
		var err error
		w, err = getWebhook(ctx, tx, org, id)
		return err
	})
	return w, err
}

// AddDeliveries stores the deliveries not stored yet; one of a webhook
// deleted meanwhile is dropped.
func (s *Store) AddDeliveries(ctx context.Context, ds []store.Delivery) (int, error) {
	n := 0
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		n = 0
		now := fmtTime(batchplan.Now())
		for _, d := range ds {
			res, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, org, event_id, event_type, import_id,
				payload, state, attempts, next_attempt_at, created_at, updated_at)
				SELECT ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?)
				ON CONFLICT (id) DO NOTHING`,
				d.ID, d.WebhookID, d.Org, d.EventID, d.EventType, d.ImportID, d.Payload, fmtTime(d.NextAttemptAt), now, now, d.WebhookID)
			if err != nil {
				return fmt.Errorf("sqlite: add delivery %s: %w", d.ID, err)
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		return nil
	})
	return n, err
}

const deliveryCols = `id, webhook_id, org, event_id, event_type, import_id, payload, state, attempts, last_status, last_error,
	next_attempt_at, created_at, updated_at, delivered_at`

func scanDelivery(row interface{ Scan(...any) error }) (store.Delivery, error) {
	var d store.Delivery
	var next, created, updated string
	var delivered sql.NullString
	if err := row.Scan(&d.ID, &d.WebhookID, &d.Org, &d.EventID, &d.EventType, &d.ImportID, &d.Payload, &d.State,
		&d.Attempts, &d.LastStatus, &d.LastError, &next, &created, &updated, &delivered); err != nil {
		return d, err
	}
	var err error
	if d.NextAttemptAt, err = parseTime(next); err != nil {
		return d, err
	}
	if d.CreatedAt, err = parseTime(created); err != nil {
		return d, err
	}
	if d.UpdatedAt, err = parseTime(updated); err != nil {
		return d, err
	}
	if delivered.Valid {
		t, err := parseTime(delivered.String)
		if err != nil {
			return d, err
		}
		d.DeliveredAt = &t
	}
	return d, nil
}

// ClaimDeliveries starts attempts of due deliveries; SQLite's one writer
// makes claims exclusive.
func (s *Store) ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int, busy []string) ([]store.Delivery, error) {
	if busy == nil {
		busy = []string{}
	}
	// Most polls find nothing due: a read tells so without taking the one
	// write lock the imports' batches need.
	var due bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_deliveries
		WHERE state = 'pending' AND next_attempt_at <= ?)`, fmtTime(now)).Scan(&due); err != nil {
		return nil, fmt.Errorf("sqlite: look for due deliveries: %w", err)
	}
	if !due {
		return nil, nil
	}
	var out []store.Delivery
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
			WHERE id IN (SELECT id FROM (
				SELECT d.id, d.next_attempt_at AS due,
					row_number() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.id) AS n
				FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
				WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND w.disabled = 0
					AND d.webhook_id NOT IN (SELECT value FROM json_each(?)))
				WHERE n = 1 ORDER BY due LIMIT ?)
			RETURNING `+deliveryCols,
			fmtTime(leaseUntil), fmtTime(now), fmtTime(now), jsonArray(busy), limit)
		if err != nil {
			return fmt.Errorf("sqlite: claim deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, err
}

// FinishAttempt records an attempt's result and the webhook's failures.
func (s *Store) FinishAttempt(ctx context.Context, d store.Delivery, a store.Attempt, disableAfter int, disableReason string) (store.Webhook, bool, error) {
	var w store.Webhook
	done := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		at := fmtTime(a.At)
		var delivered any
		if a.State == store.DeliveryDelivered {
			delivered = at
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, last_status = ?, last_error = ?,
			next_attempt_at = ?, updated_at = ?, delivered_at = coalesce(?, delivered_at)
			WHERE id = ? AND attempts = ? AND state = 'pending'`,
			a.State, a.Status, a.Error, fmtTime(a.NextAttemptAt), at, delivered, d.ID, d.Attempts)
		if err != nil {
			return fmt.Errorf("sqlite: finish delivery %s: %w", d.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		done = true
		if a.State == store.DeliveryDelivered {
			_, err = tx.ExecContext(ctx, `UPDATE webhooks SET failures = 0 WHERE id = ?`, d.WebhookID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE webhooks SET failures = failures + 1,
				disabled = CASE WHEN ?1 > 0 AND failures + 1 >= ?1 THEN 1 ELSE disabled END,
				disabled_reason = CASE WHEN ?1 > 0 AND failures + 1 >= ?1 AND disabled = 0 THEN ?2 ELSE disabled_reason END,
				updated_at = CASE WHEN ?1 > 0 AND failures + 1 >= ?1 AND disabled = 0 THEN ?3 ELSE updated_at END
				WHERE id = ?4`, disableAfter, disableReason, at, d.WebhookID)
		}
		if err != nil {
			return fmt.Errorf("sqlite: webhook %s failures: %w", d.WebhookID, err)
		}
		w, err = getWebhook(ctx, tx, d.Org, d.WebhookID)
		return err
	})
	return w, done, err
}

// ListDeliveries returns a webhook's deliveries newest first.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM webhook_deliveries WHERE org = ? AND webhook_id = ?`
	args := []any{f.Org, f.WebhookID}
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, f.State)
	}
	if f.After != "" {
		q += ` AND (created_at, id) < (SELECT created_at, id FROM webhook_deliveries WHERE id = ?)`
		args = append(args, f.After)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, batchplan.ClampLimit(f.Limit, 50, 1000))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// PruneDeliveries deletes deliveries that ended before before.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time, limit int) (int, error) {
	n := 0
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < ? LIMIT ?)`, fmtTime(before), limit)
		if err != nil {
			return fmt.Errorf("sqlite: prune deliveries: %w", err)
		}
		k, _ := res.RowsAffected()
		n = int(k)
		return nil
	})
	return n, err
}

// ExpireDeliveries fails the pending deliveries of disabled webhooks that
// were created before createdBefore.
func (s *Store) ExpireDeliveries(ctx context.Context, createdBefore time.Time, reason string) (int, error) {
	n := 0
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		now := fmtTime(batchplan.Now())
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'failed', last_error = ?, updated_at = ?
			WHERE state = 'pending' AND created_at < ?
				AND webhook_id IN (SELECT id FROM webhooks WHERE disabled = 1)`, reason, now, fmtTime(createdBefore))
		if err != nil {
			return fmt.Errorf("sqlite: expire deliveries: %w", err)
		}
		k, _ := res.RowsAffected()
		n = int(k)
		return nil
	})
	return n, err
}

// RedeliverDelivery makes a delivery pending and due at now.
func (s *Store) RedeliverDelivery(ctx context.Context, org, webhookID, id string, now time.Time) (store.Delivery, error) {
	var d store.Delivery
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanDelivery(tx.QueryRowContext(ctx, `UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?, updated_at = ?
			WHERE org = ? AND webhook_id = ? AND id = ? RETURNING `+deliveryCols, fmtTime(now), fmtTime(now), org, webhookID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: redeliver %s: %w", id, err)
		}
		return nil
	})
	return d, err
}

// UpdateWebhook replaces a webhook's URL, events and description.
func (s *Store) UpdateWebhook(ctx context.Context, w store.Webhook) (store.Webhook, error) {
	var out store.Webhook
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET url = ?, events = ?, description = ?, updated_at = ? WHERE org = ? AND id = ?`,
			w.URL, jsonArray(w.Events), w.Description, fmtTime(batchplan.Now()), w.Org, w.ID)
		if err != nil {
			return fmt.Errorf("sqlite: update webhook %s: %w", w.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("webhook %s: %w", w.ID, store.ErrNotFound)
		}
		out, err = getWebhook(ctx, tx, w.Org, w.ID)
		return err
	})
	return out, err
}
