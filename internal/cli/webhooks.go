package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// WebhooksCmd manages the organization's webhook subscriptions.
type WebhooksCmd struct {
	Create     WebhookCreateCmd     `cmd:"" help:"Subscribe a URL to the events of the organization's imports; prints the signing secret (shown this once)."`
	List       WebhookListCmd       `cmd:"" help:"List the organization's webhooks."`
	Update     WebhookUpdateCmd     `cmd:"" help:"Change a webhook's URL, events or description."`
	Delete     WebhookDeleteCmd     `cmd:"" help:"Delete a webhook and its delivery log."`
	Enable     WebhookEnableCmd     `cmd:"" help:"Enable a webhook (after it was disabled); its pending deliveries resume."`
	Disable    WebhookDisableCmd    `cmd:"" help:"Disable a webhook: no new events, pending deliveries wait."`
	Deliveries WebhookDeliveriesCmd `cmd:"" help:"Show a webhook's delivery log, newest first."`
	Redeliver  WebhookRedeliverCmd  `cmd:"" help:"Send a delivery again (same event id and body)."`
}

// WebhookRedeliverCmd sends a delivery again.
type WebhookRedeliverCmd struct {
	Server   `embed:""`
	ID       string `arg:"" help:"The webhook's id."`
	Delivery string `arg:"" help:"The delivery's id (see deliveries)."`
}

func (c *WebhookRedeliverCmd) Run(env *Env) error {
	d, err := c.client().Redeliver(env.Ctx, c.ID, c.Delivery)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Out, "delivery %s of event %s is %s again\n", d.ID, d.EventID, d.State)
	return nil
}

// WebhookCreateCmd subscribes a URL.
type WebhookCreateCmd struct {
	Server      `embed:""`
	URL         string   `arg:"" help:"The http(s) URL each event is POSTed to."`
	Events      []string `name:"event" short:"e" sep:"," help:"Events to deliver (repeat or comma-separate): ${webhook_events} (default: the terminal ones)."`
	Secret      string   `name:"secret" help:"Signing secret, 16 to 128 printable characters (default: one is generated)."`
	Description string   `name:"description" short:"d" help:"A note for people."`
	JSON        bool     `name:"json" help:"Print the webhook as JSON."`
}

func (c *WebhookCreateCmd) Run(env *Env) error {
	w, err := c.client().CreateWebhook(env.Ctx, events.WebhookCreate{URL: c.URL, Events: c.Events, Secret: c.Secret, Description: c.Description})
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Out, w)
	}
	fmt.Fprintf(env.Out, "webhook %s: %s for %s\nsecret: %s\n(the secret is not shown again: verify each delivery's %s with it)\n",
		w.ID, w.URL, strings.Join(w.Events, ", "), w.Secret, events.WebhookSignatureHeader)
	return nil
}

// WebhookListCmd lists the webhooks.
type WebhookListCmd struct {
	Server `embed:""`
	JSON   bool `name:"json" help:"Print the webhooks as a JSON array."`
}

func (c *WebhookListCmd) Run(env *Env) error {
	cl := c.client()
	list := []events.Webhook{}
	var p client.PageOpts
	for {
		page, err := cl.Webhooks(env.Ctx, p)
		if err != nil {
			return err
		}
		list = append(list, page.Data...)
		if !page.HasMore || page.NextCursor == nil {
			break
		}
		p.StartingAfter = *page.NextCursor
	}
	if c.JSON {
		return printJSON(env.Out, list)
	}
	tw := tabwriter.NewWriter(env.Out, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tFAILURES\tEVENTS\tURL")
	for _, w := range list {
		status := w.Status
		if w.DisabledReason != nil {
			status += " (" + *w.DisabledReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", w.ID, status, w.ConsecutiveFailures, strings.Join(w.Events, ","), w.URL)
	}
	return tw.Flush()
}

// WebhookUpdateCmd changes a webhook.
type WebhookUpdateCmd struct {
	Server      `embed:""`
	ID          string   `arg:"" help:"The webhook's id."`
	URL         string   `name:"url" help:"The new URL."`
	Events      []string `name:"event" short:"e" sep:"," help:"The new events (repeat or comma-separate): ${webhook_events}."`
	Description *string  `name:"description" short:"d" help:"The new description."`
}

func (c *WebhookUpdateCmd) Run(env *Env) error {
	var req events.WebhookUpdate
	if c.URL != "" {
		req.URL = &c.URL
	}
	if len(c.Events) > 0 {
		req.Events = &c.Events
	}
	req.Description = c.Description
	w, err := c.client().UpdateWebhook(env.Ctx, c.ID, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Out, "webhook %s: %s for %s\n", w.ID, w.URL, strings.Join(w.Events, ", "))
	return nil
}

// WebhookDeleteCmd deletes a webhook.
type WebhookDeleteCmd struct {
	Server `embed:""`
	ID     string `arg:"" help:"The webhook's id."`
}

func (c *WebhookDeleteCmd) Run(env *Env) error {
	if err := c.client().DeleteWebhook(env.Ctx, c.ID); err != nil {
		return err
	}
	fmt.Fprintf(env.Out, "webhook %s deleted\n", c.ID)
	return nil
}

// WebhookEnableCmd enables a webhook.
type WebhookEnableCmd struct {
	Server `embed:""`
	ID     string `arg:"" help:"The webhook's id."`
}

func (c *WebhookEnableCmd) Run(env *Env) error { return setEnabled(env, c.Server, c.ID, true) }

// WebhookDisableCmd disables a webhook.
type WebhookDisableCmd struct {
	Server `embed:""`
	ID     string `arg:"" help:"The webhook's id."`
}

func (c *WebhookDisableCmd) Run(env *Env) error { return setEnabled(env, c.Server, c.ID, false) }

func setEnabled(env *Env, s Server, id string, enabled bool) error {
	w, err := s.client().EnableWebhook(env.Ctx, id, enabled)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Out, "webhook %s %s\n", w.ID, w.Status)
	return nil
}

// WebhookDeliveriesCmd prints a webhook's delivery log.
type WebhookDeliveriesCmd struct {
	Server `embed:""`
	ID     string `arg:"" help:"The webhook's id."`
	State  string `name:"state" enum:",pending,delivered,failed" default:"" help:"Only deliveries in this state: pending, delivered, failed."`
	Limit  int    `name:"limit" short:"n" default:"20" help:"How many deliveries to show."`
	JSON   bool   `name:"json" help:"Print the deliveries as a JSON array."`
}

func (c *WebhookDeliveriesCmd) Run(env *Env) error {
	cl := c.client()
	list := []events.WebhookDelivery{}
	var p client.PageOpts
	for len(list) < c.Limit {
		p.Limit = min(c.Limit-len(list), 100)
		page, err := cl.WebhookDeliveries(env.Ctx, c.ID, c.State, p)
		if err != nil {
			return err
		}
		list = append(list, page.Data...)
		if !page.HasMore || page.NextCursor == nil {
			break
		}
		p.StartingAfter = *page.NextCursor
	}
	if c.JSON {
		return printJSON(env.Out, list)
	}
	tw := tabwriter.NewWriter(env.Out, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DELIVERY\tEVENT\tIMPORT\tSTATE\tATTEMPTS\tLAST\tNEXT\tCREATED")
	for _, d := range list {
		last, next := "-", "-"
		if d.LastStatusCode != nil {
			last = strconv.Itoa(*d.LastStatusCode)
		}
		if d.LastError != nil {
			last = *d.LastError
		}
		if d.NextAttemptAt != nil {
			next = d.NextAttemptAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.EventType, d.ImportID, d.State, d.Attempts,
			last, next, d.CreatedAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}
