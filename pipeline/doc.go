// Package pipeline owns the event stream: topic names and event types, a durable Watermill
// Pub/Sub on bbolt (the embedded log), the NATS JetStream backend, and the router with its
// middleware (correlation ids, retries, poison topics, panic recovery, logging) and replay.
package pipeline
