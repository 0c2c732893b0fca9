package pipeline_test

import (
	"context"
	"testing"
)

// A group that has subscribed but not yet committed an ack must keep its messages.
func TestTrimKeepsMessagesOfGroupWithoutAcks(t *testing.T) {
	ps, _ := openLog(t, "")
	const topic = "table.extracted"
	publishRange(t, ps, topic, 0, 3, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := ps.Subscriber("late").Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	first := <-msgs // in the handler, not yet acked
	if n := trim(t, ps, instant()); n != 0 {
		t.Errorf("trim deleted %d messages that group late has not acked", n)
	}
	first.Ack()
	for range 2 {
		<-msgs
	}
}
