package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/internal/batchplan"
)

// webhookSchema is the webhooks' tables: subscriptions, and their
// deliveries, which are both the queue the dispatcher claims from (the
// partial index of pending ones by due time) and the delivery log.
const webhookSchema = `
CREATE TABLE IF NOT EXISTS webhooks (
	id              text COLLATE "C" PRIMARY KEY,
	org             text COLLATE "C" NOT NULL,
	url             text NOT NULL,
	events          jsonb NOT NULL,
	secret          text NOT NULL,
	description     text NOT NULL DEFAULT '',
	disabled        boolean NOT NULL DEFAULT false,
	disabled_reason text NOT NULL DEFAULT '',
	failures        integer NOT NULL DEFAULT 0,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_org ON webhooks (org, id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
	id              text COLLATE "C" PRIMARY KEY,
	webhook_id      text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	org             text COLLATE "C" NOT NULL,
	event_id        text NOT NULL,
	event_type      text NOT NULL,
	import_id       text NOT NULL,
	payload         bytea NOT NULL,
	state           text NOT NULL,
	attempts        integer NOT NULL DEFAULT 0,
	last_status     integer NOT NULL DEFAULT 0,
	last_error      text NOT NULL DEFAULT '',
	next_attempt_at timestamptz NOT NULL,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	delivered_at    timestamptz
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_log ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
`

// claimLock is the pg_advisory_xact_lock key that makes claims exclusive:
// "at most one a webhook" needs a window over every due delivery, which
// FOR UPDATE SKIP LOCKED cannot lock; a claim is one short statement.
const claimLock = 0x696e6c6574 + 1

const webhookCols = `id, org, url, events, secret, description, disabled, disabled_reason, failures, created_at, updated_at`

func scanWebhook(row pgx.Row) (store.Webhook, error) {
	var w store.Webhook
	if err := row.Scan(&w.ID, &w.Org, &w.URL, &w.Events, &w.Secret, &w.Description, &w.Disabled, &w.DisabledReason,
		&w.Failures, &w.CreatedAt, &w.UpdatedAt); err != nil {
		return w, err
	}
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return w, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getWebhook(ctx context.Context, q querier, org, id string) (store.Webhook, error) {
	w, err := scanWebhook(q.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE org = $1 AND id = $2`, org, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return w, fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("postgres: get webhook %s: %w", id, err)
	}
	return w, nil
}

// CreateWebhook stores a new webhook.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) error {
	if w.CreatedAt.IsZero() {
		w.CreatedAt = batchplan.Now()
	}
	if w.Events == nil {
		w.Events = []string{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO webhooks (`+webhookCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9)`,
		w.ID, w.Org, w.URL, w.Events, w.Secret, w.Description, w.Disabled, w.DisabledReason, w.CreatedAt.UTC())
	if err != nil {
		return fmt.Errorf("postgres: create webhook %s: %w", w.ID, err)
	}
	return nil
}

// GetWebhook returns org's webhook id.
func (s *Store) GetWebhook(ctx context.Context, org, id string) (store.Webhook, error) {
	return getWebhook(ctx, s.pool, org, id)
}

// ListWebhooks pages through org's webhooks by id.
func (s *Store) ListWebhooks(ctx context.Context, org, after string, limit int) ([]store.Webhook, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE org = $1 AND id > $2 ORDER BY id LIMIT $3`,
		org, after, batchplan.ClampLimit(limit, 50, 1000))
	if err != nil {
		return nil, fmt.Errorf("postgres: list webhooks: %w", err)
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE org = $1 AND id = $2`, org, id)
	if err != nil {
		return fmt.Errorf("postgres: delete webhook %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// EnableWebhook enables or disables a webhook.
func (s *Store) EnableWebhook(ctx context.Context, org, id string, enabled bool, reason string) (store.Webhook, error) {
	q := `UPDATE webhooks SET disabled = true, disabled_reason = $3, updated_at = $4 WHERE org = $1 AND id = $2
		RETURNING ` + webhookCols
	if enabled {
		q = `UPDATE webhooks SET disabled = false, disabled_reason = '', failures = 0, updated_at = $4
			WHERE org = $1 AND id = $2 AND $3::text IS NOT NULL RETURNING ` + webhookCols
	}
	w, err := scanWebhook(s.pool.QueryRow(ctx, q, org, id, reason, batchplan.Now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return w, fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("postgres: enable webhook %s: %w", id, err)
	}
	return w, nil
}

// AddDeliveries stores the deliveries not stored yet; one of a webhook
// deleted meanwhile is dropped.
func (s *Store) AddDeliveries(ctx context.Context, ds []store.Delivery) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n = 0
		now := batchplan.Now()
		for _, d := range ds {
			tag, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, org, event_id, event_type, import_id,
				payload, state, attempts, next_attempt_at, created_at, updated_at)
				SELECT $1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9, $9 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $2)
				ON CONFLICT (id) DO NOTHING`,
				d.ID, d.WebhookID, d.Org, d.EventID, d.EventType, d.ImportID, d.Payload, d.NextAttemptAt.UTC(), now)
			if err != nil {
				return fmt.Errorf("postgres: add delivery %s: %w", d.ID, err)
			}
			n += int(tag.RowsAffected())
		}
		return nil
	})
	return n, err
}

const deliveryCols = `id, webhook_id, org, event_id, event_type, import_id, payload, state, attempts, last_status, last_error,
	next_attempt_at, created_at, updated_at, delivered_at`

func scanDelivery(row pgx.Row) (store.Delivery, error) {
	var d store.Delivery
	if err := row.Scan(&d.ID, &d.WebhookID, &d.Org, &d.EventID, &d.EventType, &d.ImportID, &d.Payload, &d.State,
		&d.Attempts, &d.LastStatus, &d.LastError, &d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt, &d.DeliveredAt); err != nil {
		return d, err
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = d.NextAttemptAt.UTC(), d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	if d.DeliveredAt != nil {
		t := d.DeliveredAt.UTC()
		d.DeliveredAt = &t
	}
	return d, nil
}

// ClaimDeliveries starts attempts of due deliveries, one claim at a time.
func (s *Store) ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int, busy []string) ([]store.Delivery, error) {
	if busy == nil {
		busy = []string{}
	}
	var out []store.Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = out[:0]
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(claimLock)); err != nil {
			return fmt.Errorf("postgres: lock claims: %w", err)
		}
		rows, err := tx.Query(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $1, updated_at = $2
			WHERE id IN (SELECT id FROM (
				SELECT d.id, d.next_attempt_at AS due,
					row_number() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.id) AS n
				FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
				WHERE d.state = 'pending' AND d.next_attempt_at <= $2 AND NOT w.disabled
					AND d.webhook_id <> ALL($3::text[])) c
				WHERE n = 1 ORDER BY due LIMIT $4)
			RETURNING `+deliveryCols,
			leaseUntil.UTC(), now.UTC(), busy, limit)
		if err != nil {
			return fmt.Errorf("postgres: claim deliveries: %w", err)
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var delivered *time.Time
		if a.State == store.DeliveryDelivered {
			at := a.At.UTC()
			delivered = &at
		}
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET state = $1, last_status = $2, last_error = $3,
			next_attempt_at = $4, updated_at = $5, delivered_at = coalesce($6, delivered_at)
			WHERE id = $7 AND attempts = $8 AND state = 'pending'`,
			a.State, a.Status, a.Error, a.NextAttemptAt.UTC(), a.At.UTC(), delivered, d.ID, d.Attempts)
		if err != nil {
			return fmt.Errorf("postgres: finish delivery %s: %w", d.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		done = true
		if a.State == store.DeliveryDelivered {
			_, err = tx.Exec(ctx, `UPDATE webhooks SET failures = 0 WHERE id = $1`, d.WebhookID)
		} else {
			_, err = tx.Exec(ctx, `UPDATE webhooks SET failures = failures + 1,
				disabled = CASE WHEN $1 > 0 AND failures + 1 >= $1 THEN true ELSE disabled END,
				disabled_reason = CASE WHEN $1 > 0 AND failures + 1 >= $1 AND NOT disabled THEN $2 ELSE disabled_reason END,
				updated_at = CASE WHEN $1 > 0 AND failures + 1 >= $1 AND NOT disabled THEN $3 ELSE updated_at END
				WHERE id = $4`, disableAfter, disableReason, a.At.UTC(), d.WebhookID)
		}
		if err != nil {
			return fmt.Errorf("postgres: webhook %s failures: %w", d.WebhookID, err)
		}
		w, err = getWebhook(ctx, tx, d.Org, d.WebhookID)
		return err
	})
	return w, done, err
}

// ListDeliveries returns a webhook's deliveries newest first.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries
		WHERE org = $1 AND webhook_id = $2 AND ($3 = '' OR state = $3)
			AND ($4 = '' OR (created_at, id) < (SELECT created_at, id FROM webhook_deliveries WHERE id = $4))
		ORDER BY created_at DESC, id DESC LIMIT $5`,
		f.Org, f.WebhookID, f.State, f.After, batchplan.ClampLimit(f.Limit, 50, 1000))
	if err != nil {
		return nil, fmt.Errorf("postgres: list deliveries: %w", err)
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
		SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < $1 LIMIT $2)`, before.UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune deliveries: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ExpireDeliveries fails the pending deliveries of disabled webhooks that
// were created before createdBefore.
func (s *Store) ExpireDeliveries(ctx context.Context, createdBefore time.Time, reason string) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_deliveries SET state = 'failed', last_error = $1, updated_at = $2
		WHERE state = 'pending' AND created_at < $3
			AND webhook_id IN (SELECT id FROM webhooks WHERE disabled)`, reason, batchplan.Now(), createdBefore.UTC())
	if err != nil {
		return 0, fmt.Errorf("postgres: expire deliveries: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// RedeliverDelivery makes a delivery pending and due at now.
func (s *Store) RedeliverDelivery(ctx context.Context, org, webhookID, id string, now time.Time) (store.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, updated_at = $1
		WHERE org = $2 AND webhook_id = $3 AND id = $4 RETURNING `+deliveryCols, now.UTC(), org, webhookID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("postgres: redeliver %s: %w", id, err)
	}
	return d, nil
}

// UpdateWebhook replaces a webhook's URL, events and description.
func (s *Store) UpdateWebhook(ctx context.Context, w store.Webhook) (store.Webhook, error) {
	if w.Events == nil {
		w.Events = []string{}
	}
	out, err := scanWebhook(s.pool.QueryRow(ctx, `UPDATE webhooks SET url = $1, events = $2, description = $3, updated_at = $4
		WHERE org = $5 AND id = $6 RETURNING `+webhookCols, w.URL, w.Events, w.Description, batchplan.Now(), w.Org, w.ID))
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("webhook %s: %w", w.ID, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("postgres: update webhook %s: %w", w.ID, err)
	}
	return out, nil
}
