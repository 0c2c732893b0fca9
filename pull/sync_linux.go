package pull

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncTree makes files and dirs durable with one syncfs(2) of the mirror's filesystem: the
// kernel writes all of them back together, instead of one round trip to the disk per file.
// Since Linux 5.8 it also reports a failed writeback of any of them.
func syncTree(root string, _ []string, _ map[string]bool) error {
	d, err := os.Open(root)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// startWriteback asks the kernel to start writing f's pages to disk now, without waiting, so
// the disk works while the next files download and the flush at the end finds little left.
func startWriteback(f *os.File) {
	unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
