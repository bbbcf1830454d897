package metrics

// WebhookAttempt counts one webhook delivery attempt by its outcome
// (webhooks.Outcome*: a few fixed values, never a URL or an organization).
func (m *Metrics) WebhookAttempt(outcome string) {
	m.webhookAttempts.WithLabelValues(outcome).Inc()
}
