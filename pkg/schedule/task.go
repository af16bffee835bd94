package schedule

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// taskPlan is a Task Scheduler task \entraclaw\renew-<hash8>, registered from an XML
// file by schtasks /Create /XML: daily at a time of day spread by the state file's
// path, plus up to an hour at random, and run as soon as possible after a missed start.
func taskPlan(job Job) (*Plan, error) {
	hash := Hash8(job.StatePath)
	name := `\entraclaw\renew-` + hash
	xmlFile := joinWindows(job.StateDir, "renew-task-"+hash+".xml")
	hour, minute := timeOfDay(job.StatePath)
	argv := job.command()
	args := make([]string, len(argv)-1)
	for i, a := range argv[1:] {
		args[i] = windowsArg(a)
	}
	// Task Scheduler reads StartBoundary without a zone as local time; any past day
	// will do, the trigger repeats daily from it.
	text := fmt.Sprintf(taskTemplate,
		xmlText(job.description()), xmlText(name), hour, minute, xmlText(job.User),
		xmlText(argv[0]), xmlText(strings.Join(args, " ")))
	text = strings.ReplaceAll(text, "\n", "\r\n")
	return &Plan{
		GOOS:              "windows",
		Kind:              KindTask,
		Name:              name,
		Files:             []File{{Path: xmlFile, Text: text, UTF16: true, Temporary: true}},
		Record:            KindTask + " " + name,
		InstallCommands:   [][]string{{"schtasks", "/Create", "/TN", name, "/XML", xmlFile, "/F"}},
		UninstallCommands: [][]string{{"schtasks", "/Query", "/TN", name}, {"schtasks", "/Delete", "/TN", name, "/F"}},
	}, nil
}

// taskTemplate is the task: description, URI, hour, minute, user, command, arguments.
// The XML declaration says UTF-16 because the file is written so (encodeUTF16).
const taskTemplate = `<?xml version="1.0" encoding="UTF-16"?>
<!-- Written by entraclaw-migrate -schedule install; entraclaw-migrate -schedule uninstall removes the task. -->
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>%s</Description>
    <URI>%s</URI>
  </RegistrationInfo>
  <Triggers>
    <CalendarTrigger>
      <StartBoundary>2025-01-01T%02d:%02d:00</StartBoundary>
      <Enabled>true</Enabled>
      <RandomDelay>PT1H</RandomDelay>
      <ScheduleByDay>
        <DaysInterval>1</DaysInterval>
      </ScheduleByDay>
    </CalendarTrigger>
  </Triggers>
  <!-- The task runs as the user who installed it, only while that user is logged on
       (InteractiveToken: no password is stored), never as SYSTEM: the certificate is in
       this user's Credential Manager, whose items no other account can read. -->
  <Principals>
    <Principal id="Author">
      <UserId>%s</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT1H</ExecutionTimeLimit>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>%s</Command>
      <Arguments>%s</Arguments>
    </Exec>
  </Actions>
</Task>
`

// windowsArg quotes one argument so that CommandLineToArgvW (the C runtime's
// parsing, which Go programs use) gives it back unchanged.
func windowsArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\v\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for _, r := range s {
		switch r {
		case '\\':
			slashes++
		case '"':
			// The backslashes before a quote, and the quote, are escaped.
			b.WriteString(strings.Repeat(`\`, 2*slashes+1))
			slashes = 0
		default:
			b.WriteString(strings.Repeat(`\`, slashes))
			slashes = 0
		}
		if r != '\\' {
			b.WriteRune(r)
		}
	}
	// Backslashes before the closing quote are doubled.
	b.WriteString(strings.Repeat(`\`, 2*slashes))
	b.WriteByte('"')
	return b.String()
}

// encodeUTF16 is text as UTF-16LE with a byte order mark, as schtasks /XML expects.
func encodeUTF16(text string) []byte {
	units := utf16.Encode([]rune(text))
	out := make([]byte, 2, 2+2*len(units))
	out[0], out[1] = 0xff, 0xfe
	for _, u := range units {
		out = append(out, byte(u), byte(u>>8))
	}
	return out
}
