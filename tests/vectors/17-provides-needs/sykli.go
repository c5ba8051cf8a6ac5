// Test vector 17-provides-needs: must print expected.json byte for byte with --emit.
package main

import (
	sykli "sykli.dev/sdk-go"
)

func main() {
	s := sykli.New()
	s.Task("db").
		Run("start-db").
		Provides("postgres").
		ProvidesValue("db_url", "postgres://localhost:5432/app")
	s.Task("migrate").Run("migrate").Needs("db_url")
	s.Task("test").Run("test").Needs("postgres").Needs("db_url").After("migrate")
	s.Emit()
}
