package entra

// notYetCodes are the AADSTS codes of a token request for something Entra ID does not
// know yet: the certificate (700027), the service principal (7000229) or the app
// (700016). Right after a change they mean "not yet"; they become final only when
// they outlast the propagation.
var notYetCodes = []int{700027, 7000229, 700016}

// NotYet returns the AADSTS code when err is a token request refused with one of
// notYetCodes, and 0, false otherwise.
func NotYet(err error) (code int, ok bool) {
	sts, isSTS := AsSTSError(err)
	if !isSTS {
		return 0, false
	}
	for _, c := range notYetCodes {
		if sts.HasCode(c) {
			return c, true
		}
	}
	return 0, false
}
