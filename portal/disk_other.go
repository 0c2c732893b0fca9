//go:build !unix

package portal

// diskOf is not measured on this platform.
func diskOf(path string) (diskUsage, uint64) {
	return diskUsage{Path: path, Error: "disk usage is not measured on this platform"}, 0
}
