// Command printversion prints version.String(), for version's tests.
package main

import (
	"fmt"

	"github.com/octavia-vpp/health/internal/version"
)

func main() { fmt.Println(version.String()) }
