package inventory

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Text variables given as numbers: the inventory loader reads them as
// ansible-inventory does (numbers), and metalk8s refuses them with a
// message naming host and variable, without printing a secret.
func TestConnectionTextVars(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.ini")
	ini := `[ini]
i1 ansible_host=10.0.0.1 ansible_become_password=000000
i2 ansible_host=10.0.0.2 ansible_become_password='"000000"' ansible_port=22
i5 ansible_host=10.0.0.5 ansible_user="1000"
i3 ansible_host=10.0.0.3 ansible_user=1000
i4 ansible_host=10.0.0.4 ansible_become_password='123456' ansible_sudo_pass=123456
[yaml]
y1 ansible_host=10.0.1.1
y2 ansible_host=10.0.1.2
y3 ansible_host=10.0.1.3
y4 ansible_host=10.0.1.4
`
	files := map[string]string{
		"hosts.ini":        ini,
		"host_vars/y1.yml": "ansible_become_password: 000000\n",
		"host_vars/y2.yml": "ansible_become_password: \"000000\"\nansible_port: 22\nansible_ssh_timeout: 5\n",
		"host_vars/y3.yml": "ansible_ssh_private_key_file: yes\n",
		"host_vars/y4.yml": "ansible_ssh_host: 10.1\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	for _, tc := range []struct {
		host, bad string // bad: the variable refused, "" if accepted
		secret    string // must not appear in the error
	}{
		{"i1", "ansible_become_password", ""},
		{"i2", "", ""},
		{"i3", "ansible_user", ""},
		{"i4", "ansible_sudo_pass", "123456"},
		{"i5", "ansible_user", ""},
		{"y1", "ansible_become_password", ""},
		{"y2", "", ""},
		{"y3", "ansible_ssh_private_key_file", ""},
		{"y4", "ansible_ssh_host", ""},
	} {
		inv, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		h := inv.Hosts[tc.host]
		c, err := SSHFor(h)
		if tc.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.host, err)
			} else if c.BecomePassword != "" && c.BecomePassword != "000000" {
				t.Errorf("%s: become password %q, want 000000", tc.host, c.BecomePassword)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: %s accepted: %+v", tc.host, tc.bad, c)
			continue
		}
		for _, want := range []string{"host " + tc.host, "variable " + tc.bad, "quote the value in YAML", "vars file"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", tc.host, err, want)
			}
		}
		if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
			t.Errorf("%s: error shows the secret: %q", tc.host, err)
		}
		// The real peer reads the same value as no text either.
		if v, ok := ansibleHostVar(t, path, tc.host, tc.bad); ok {
			if _, isText := v.(string); isText {
				t.Errorf("%s: ansible-inventory reads %s as text %q, metalk8s refuses it", tc.host, tc.bad, v)
			}
		}
	}
}

// ansibleHostVar is one variable of `ansible-inventory --host`.
func ansibleHostVar(t *testing.T, path, host, key string) (any, bool) {
	t.Helper()
	bin := needAnsible(t, "ansible-inventory")
	cmd := exec.Command(bin, "-i", path, "--host", host)
	cmd.Dir = filepath.Dir(path)
	cmd.Env = ansibleEnv(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-inventory --host %s: %v", host, err)
	}
	var vars map[string]any
	if err := json.Unmarshal(out, &vars); err != nil {
		t.Fatal(err)
	}
	v, ok := vars[key]
	if !ok {
		t.Errorf("ansible-inventory --host %s has no %s", host, key)
	}
	return v, ok
}
