package mfa

import (
	"context"
	"fmt"
	"slices"
)

// Remove deletes c and, when c was the user's last factor other than
// recovery codes, the recovery codes too: they stand in for the other
// factors, and left alone they would make the next sign-in that needs a
// second factor spend a recovery code instead of enrolling a new factor.
// It returns the credentials deleted besides c. Run it in one transaction
// (st is the transaction's store) so a concurrent enrollment is not lost.
func Remove(ctx context.Context, st Store, c Credential) (orphans []Credential, err error) {
	if err := st.DeleteMFACredential(ctx, c.ID); err != nil {
		return nil, fmt.Errorf("delete second factor %s: %w", c.ID, err)
	}
	if c.Type == TypeRecovery {
		return nil, nil
	}
	left, err := st.ListMFACredentials(ctx, c.UserID)
	if err != nil {
		return nil, fmt.Errorf("list second factors: %w", err)
	}
	if slices.ContainsFunc(left, func(l Credential) bool { return l.Type != TypeRecovery }) {
		return nil, nil
	}
	for _, l := range left {
		if err := st.DeleteMFACredential(ctx, l.ID); err != nil {
			return nil, fmt.Errorf("delete recovery codes %s: %w", l.ID, err)
		}
	}
	return left, nil
}
