//go:build !linux

package pull

import (
	"os"

	"github.com/ai-data-analyst/analyst/store"
)

// syncTree fsyncs each file, then each directory: the portable way to make renamed files
// durable.
func syncTree(_ string, files []string, dirs map[string]bool) error {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := store.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

func startWriteback(*os.File) {}
