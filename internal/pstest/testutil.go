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

// This file holds the parts of cloud.google.com/go/internal/testutil
// (v0.123.0, server.go) that fake.go uses; that package is internal to the
// cloud.google.com/go modules and cannot be imported from here.

package pstest

import (
	"log"
	"net"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// testutilServer is a gRPC server for testing.
type testutilServer struct {
	Addr string
	l    net.Listener
	Gsrv *grpc.Server
}

// newTestutilServer creates a new Server listening on addr.
func newTestutilServer(addr string, opts ...grpc.ServerOption) (*testutilServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &testutilServer{Addr: l.Addr().String(), l: l, Gsrv: grpc.NewServer(opts...)}, nil
}

// Start causes the server to start accepting incoming connections.
// Call Start after registering handlers.
func (s *testutilServer) Start() {
	go func() {
		if err := s.Gsrv.Serve(s.l); err != nil {
			log.Printf("testutil.Server.Start: %v", err)
		}
	}()
}

// Close shuts down the server.
func (s *testutilServer) Close() {
	s.Gsrv.Stop()
	s.l.Close()
}

// pageBounds converts an incoming page size and token from an RPC request into
// slice bounds and the outgoing next-page token.
//
// pageBounds assumes that the complete, unpaginated list of items exists as a
// single slice. In addition to the page size and token, pageBounds needs the
// length of that slice.
//
// pageBounds's first two return values should be used to construct a sub-slice of
// the complete, unpaginated slice. E.g. if the complete slice is s, then
// s[from:to] is the desired page. Its third return value should be set as the
// NextPageToken field of the RPC response.
func pageBounds(pageSize int, pageToken string, length int) (from, to int, nextPageToken string, err error) {
	from, to = 0, length
	if pageToken != "" {
		from, err = strconv.Atoi(pageToken)
		if err != nil {
			return 0, 0, "", status.Errorf(codes.InvalidArgument, "bad page token: %v", err)
		}
		if from >= length {
			return length, length, "", nil
		}
	}
	if pageSize > 0 && from+pageSize < length {
		to = from + pageSize
		nextPageToken = strconv.Itoa(to)
	}
	return from, to, nextPageToken, nil
}
