// Command example scans one company through the Go binding and prints its risk assessment.
//
//	EXONA_API_KEY=... EXONA_BASE_URL=... go run ./example "Acme AI Ltd" https://acme.ai
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	exona "exonalab.com/exona"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: example COMPANY_NAME COMPANY_WEBSITE")
		os.Exit(2)
	}
	client, err := exona.NewClient("", "") // EXONA_API_KEY, EXONA_BASE_URL
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	scan, err := client.ScanAndWait(ctx, os.Args[1], os.Args[2], &exona.Options{MaxAgeDays: 30})
	var e *exona.Error
	switch {
	case errors.As(err, &e) && e.ScanID != "":
		fmt.Fprintf(os.Stderr, "%v\nresume later with Wait(ctx, %q, nil)\n", err, e.ScanID)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r := scan.Risk
	fmt.Printf("scan %s (cached: %v)\noverall risk: %s\n", scan.ID, scan.Cached, r.OverallRiskLevel)
	for _, d := range []struct {
		name string
		dim  exona.Dimension
	}{
		{"ai_intensity", r.AIIntensity}, {"autonomy", r.Autonomy}, {"domain_risk", r.DomainRisk},
		{"blast_radius", r.BlastRadius}, {"data_content_ip_risk", r.DataContentIPRisk},
		{"control_governance", r.ControlGovernance},
	} {
		fmt.Printf("  %-22s %d  %s\n", d.name, d.dim.Score, d.dim.Label)
	}
}
