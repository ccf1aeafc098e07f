// Copyright 2016 Google LLC
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//      http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// The comparisons of cloud.google.com/go/internal/testutil (cmp.go) that
// fake_test.go uses, on go-cmp with protocmp.

package pstest

import (
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// testutilEqual reports whether x and y are equal, comparing protocol
// buffers by value.
func testutilEqual(x, y interface{}, opts ...cmp.Option) bool {
	return cmp.Equal(x, y, append(opts, protocmp.Transform())...)
}

// testutilDiff reports the differences between x and y, comparing protocol
// buffers by value.
func testutilDiff(x, y interface{}, opts ...cmp.Option) string {
	return cmp.Diff(x, y, append(opts, protocmp.Transform())...)
}
