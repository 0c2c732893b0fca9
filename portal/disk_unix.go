//go:build unix

package portal

import "syscall"

// diskOf reports the usage of the filesystem holding path, and its device id.
func diskOf(path string) (diskUsage, uint64) {
	d := diskUsage{Path: path}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		d.Error = err.Error()
		return d, 0
	}
	total := st.Blocks * uint64(st.Bsize)
	avail := st.Bavail * uint64(st.Bsize) // what unprivileged users may still write
	d.TotalBytes, d.FreeBytes = total, avail
	if total > 0 {
		d.UsedPercent = float64(int(float64(total-avail)/float64(total)*1000)) / 10
	}
	var fi syscall.Stat_t
	syscall.Stat(path, &fi)
	return d, uint64(fi.Dev)
}
