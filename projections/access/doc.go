// Package access decides who may use the service and what each caller may
// see. A policy file maps IAM-style members (user:, serviceAccount:,
// domain: and user:*@… patterns) to the roles admin, viewer and own; see
// ParsePolicy.
package access
