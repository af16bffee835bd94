package schedule

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// launchdPlan is a launchd agent in ~/Library/LaunchAgents, started daily at a time
// of day spread by the state file's path. launchd runs a start missed while the Mac
// slept when it wakes. Agents run in the user's GUI session, where the login keychain
// is unlocked.
func launchdPlan(job Job) (*Plan, error) {
	hash := Hash8(job.StatePath)
	label := "com.entraclaw.renew." + hash
	plist := joinUnix(job.Home, "Library", "LaunchAgents", label+".plist")
	hour, minute := timeOfDay(job.StatePath)

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by entraclaw-migrate -schedule install; entraclaw-migrate -schedule uninstall removes it. -->
<plist version="1.0">
<dict>
`)
	plistKey(&b, 1, "Label")
	plistString(&b, 1, label)
	plistKey(&b, 1, "ProgramArguments")
	b.WriteString("\t<array>\n")
	for _, arg := range job.command() {
		plistString(&b, 2, arg)
	}
	b.WriteString("\t</array>\n")
	plistKey(&b, 1, "StartCalendarInterval")
	b.WriteString("\t<dict>\n")
	plistKey(&b, 2, "Hour")
	fmt.Fprintf(&b, "\t\t<integer>%d</integer>\n", hour)
	plistKey(&b, 2, "Minute")
	fmt.Fprintf(&b, "\t\t<integer>%d</integer>\n", minute)
	b.WriteString("\t</dict>\n")
	plistKey(&b, 1, "RunAtLoad")
	b.WriteString("\t<false/>\n")
	plistKey(&b, 1, "StandardErrorPath")
	plistString(&b, 1, joinUnix(job.StateDir, "renew.log"))
	b.WriteString("</dict>\n</plist>\n")

	domain := "gui/" + strconv.Itoa(job.UID)
	return &Plan{
		GOOS:              "darwin",
		Kind:              KindLaunchd,
		Name:              label,
		Files:             []File{{Path: plist, Text: b.String()}},
		Record:            KindLaunchd + " " + plist,
		InstallCommands:   [][]string{{"launchctl", "bootstrap", domain, plist}},
		UninstallCommands: [][]string{{"launchctl", "bootout", domain + "/" + label}},
	}, nil
}

func plistKey(b *strings.Builder, indent int, key string) {
	b.WriteString(strings.Repeat("\t", indent) + "<key>" + key + "</key>\n")
}

func plistString(b *strings.Builder, indent int, s string) {
	b.WriteString(strings.Repeat("\t", indent) + "<string>" + xmlText(s) + "</string>\n")
}

// xmlText escapes s as XML character data. Quotes need no escape outside
// attributes: they are left as they are, for people reading the file.
func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return strings.NewReplacer("&#34;", `"`, "&#39;", "'").Replace(b.String())
}
