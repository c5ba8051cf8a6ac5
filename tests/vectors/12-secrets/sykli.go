// Test vector 12-secrets: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("deploy").
		Run("./deploy.sh").
		Secret("API_TOKEN").
		Secrets("AWS_KEY", "AWS_SECRET").
		Secret("NPM_TOKEN").
		SecretFrom("DB_PASS", sykli.FromEnv("PROD_DB_PASSWORD")).
		SecretFrom("TLS_CERT", sykli.FromFile("/etc/certs/tls.pem"))
	s.Emit()
}
