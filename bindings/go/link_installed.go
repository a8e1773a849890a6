//go:build exona_installed

package exona

// With -tags exona_installed: link an installed libexona through pkg-config (make install
// PREFIX=...; PKG_CONFIG_PATH=PREFIX/lib/pkgconfig), leaving no checkout path in the binary.
// For a prefix outside the loader's path add
// CGO_LDFLAGS="-Wl,-rpath,$(pkg-config --variable=rpath exona)".

/*
#cgo pkg-config: exona
*/
import "C"
