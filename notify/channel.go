package notify

import (
	"context"
	"strings"

	"github.com/ai-data-analyst/analyst/store"
)

// Channel delivers notifications to users by one means (Telegram, the desktop app).
type Channel interface {
	Name() string
	// Deliver sends one notification and says what became of it. It must honour ctx and must
	// not depend on other channels.
	Deliver(ctx context.Context, d Delivery) Status
}

// Delivery is a notification to send, with its image file ("" when none).
type Delivery struct {
	Note      store.Notification
	ImagePath string
}

// Status is what a channel did with a notification, as the inbox shows it.
type Status string

// Statuses of a delivery; anything else is a failure ("failed: ...").
const (
	StatusSent         Status = "sent"         // Telegram accepted it
	StatusDelivered    Status = "delivered"    // written to an open desktop connection
	StatusQueued       Status = "queued"       // the desktop app is offline; sent on reconnect
	StatusAcknowledged Status = "acknowledged" // the desktop app confirmed it
	StatusNotLinked    Status = "not linked"   // the user has not linked this channel
)

// OK reports whether the notification reached (or will surely reach) the user on the channel.
func (s Status) OK() bool {
	return s == StatusSent || s == StatusDelivered || s == StatusQueued || s == StatusAcknowledged
}

// Failed makes a failure status.
func Failed(err error) Status {
	return Status("failed: " + strings.TrimSpace(err.Error()))
}
